// A module written outside the library: Swish (SiLU), y = x * sigmoid(beta * x), with a
// learnable beta. docs/guide/write_your_own_module.md shows this file; CTest builds it and
// runs it, and it exits non-zero unless gradcheck passes.
#include <backprop/backprop.hpp>
#include <backprop/gradcheck.hpp>  // not in the umbrella: tests and checks include it
#include <cmath>
#include <cstdio>
using namespace backprop;

template <typename T>
class Swish : public Module<T> {
 public:
  explicit Swish(T beta_init = T(1))
      : beta(Tensor<T>::full({1}, beta_init)), grad_beta(Tensor<T>::zeros({1})) {}

  // x -> y = x * s, s = sigmoid(beta * x), same shape. Saves x and s.
  const Tensor<T>& forward(const Tensor<T>& x) override {
    const T b = beta[0];
    input_ = x;
    sig_.resize(x.shape());
    output_.resize(x.shape());
    for (Index i = 0; i < x.numel(); ++i) {
      sig_[i] = T(1) / (T(1) + std::exp(-b * x[i]));
      output_[i] = x[i] * sig_[i];
    }
    return output_;
  }

  // ds/dz = s (1 - s) for z = beta * x, so
  //   dL/dx     = dy * (s + beta * x * s * (1 - s))
  //   dL/dbeta += sum_i dy * x^2 * s * (1 - s)          (accumulated, as every parameter)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const T b = beta[0];
    grad_input_.resize(input_.shape());
    T dbeta = 0;
    for (Index i = 0; i < input_.numel(); ++i) {
      const T x = input_[i], s = sig_[i], ds = s * (T(1) - s);
      grad_input_[i] = grad_output[i] * (s + b * x * ds);
      dbeta += grad_output[i] * x * x * ds;
    }
    // Added, or written when zero_grad(true) left the gradient none (empty).
    if (accumulates_into(grad_beta, beta))
      grad_beta[0] += dbeta;
    else
      grad_beta[0] = dbeta;
    return grad_input_;
  }

  // Names the parameter, so parameters(), state_dict(), zero_grad() and optimizers see it.
  void visit(StateVisitor<T>& v) override { v.parameter("beta", beta, grad_beta); }

  Tensor<T> beta, grad_beta;  // (1)

 private:
  Tensor<T> input_, sig_, output_, grad_input_;
};

int main() {
  // Proof: every element of dL/dx and dL/dbeta against central differences, in double.
  Generator gen(0);
  Swish<double> swish(0.7);
  GradcheckResult r = gradcheck(swish, Tensor<double>::randn({5, 7}, gen));
  std::printf("swish alone: checked %ld, max abs error %.2g: %s\n", static_cast<long>(r.checked),
              r.max_abs_error, r.ok ? "ok" : r.failures.c_str());

  // In a model: the parameter is found by name, the chain rule runs through it.
  Sequential<double> net(Linear<double>(7, 4, true, gen), Swish<double>(1.5),
                         Linear<double>(4, 3, true, gen));
  GradcheckResult r2 = gradcheck(net, Tensor<double>::randn({5, 7}, gen));
  std::printf("in a Sequential: %s is a parameter; %s\n", net.parameters()[2].name.c_str(),
              r2.ok ? "ok" : r2.failures.c_str());

  // After zero_grad(true) backward writes beta's gradient: the value it adds to a zero one.
  const Tensor<double> x = Tensor<double>::randn({5, 7}, gen),
                       dy = Tensor<double>::randn({5, 3}, gen);
  net.zero_grad();
  net.forward(x);
  net.backward(dy);
  const double added = (*net.parameters()[2].grad)[0];
  net.zero_grad(/*set_to_none=*/true);
  net.forward(x);
  net.backward(dy);
  const bool same = (*net.parameters()[2].grad)[0] == added;
  std::printf("zero_grad(true): beta's gradient written, %s\n", same ? "the same" : "DIFFERENT");
  return r.ok && r2.ok && same ? 0 : 1;
}
