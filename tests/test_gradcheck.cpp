// SPDX-License-Identifier: MIT
// gradcheck itself: it skips dL/dx when the module's input does not require grad (it used to
// read past the end of the empty gradient), reports a gradient of the wrong shape, catches
// a wrong backward, and takes any loss.
#include <backprop/gradcheck.hpp>
#include <backprop/linear.hpp>
#include <backprop/mse_loss.hpp>
#include <backprop/sequential.hpp>
#include <catch2/catch.hpp>

using namespace backprop;

namespace {
// y = 2x with a backward that forgets the 2: gradcheck must fail it.
struct WrongDouble : Module<double> {
  Tensor<double> y, dx;
  const Tensor<double>& forward(const Tensor<double>& x) override {
    y = x;
    y.vector() *= 2.0;
    return y;
  }
  const Tensor<double>& backward(const Tensor<double>& dy) override { return dx = dy; }
};
// A backward that returns a gradient of the wrong shape.
struct WrongShape : WrongDouble {
  const Tensor<double>& backward(const Tensor<double>&) override {
    return dx = Tensor<double>::zeros({1});
  }
};
}  // namespace

TEST_CASE("gradcheck: a module whose input does not require grad (first layer)", "[gradcheck]") {
  // Before the fix, gradcheck compared "input" unconditionally and read the empty tensor
  // that Linear::backward returns here: a crash (null data) or a failure on garbage.
  Generator gen(60);
  Linear<double> fc(4, 3, true, gen);
  fc.set_input_requires_grad(false);
  GradcheckResult r = gradcheck(fc, Tensor<double>::randn({5, 4}, gen));
  INFO(r.failures);
  CHECK(r.ok);
  CHECK(r.checked == 3 * 4 + 3);  // the parameters only
  Sequential<double> net(Linear<double>(4, 3, true, gen), Linear<double>(3, 2, true, gen));
  net.set_input_requires_grad(false);
  r = gradcheck(net, Tensor<double>::randn({5, 4}, gen));
  CHECK(r.ok);
  CHECK(r.checked == 12 + 3 + 6 + 2);
}

TEST_CASE("gradcheck: a wrong backward fails, a wrong shape is reported", "[gradcheck]") {
  Generator gen(61);
  const Tensor<double> x = Tensor<double>::randn({3, 2}, gen);
  WrongDouble wrong;
  GradcheckResult r = gradcheck(wrong, x);
  CHECK_FALSE(r.ok);
  CHECK(r.failures.find("input[0]: analytic") != std::string::npos);
  WrongShape shape;
  r = gradcheck(shape, x);
  CHECK_FALSE(r.ok);
  CHECK(r.failures == "input: the analytic gradient has shape [1], expected [3, 2]\n");
}

TEST_CASE("gradcheck: any loss, and a wrong one fails", "[gradcheck]") {
  Generator gen(62);
  const Tensor<double> x = Tensor<double>::randn({3, 2}, gen),
                       t = Tensor<double>::randn({3, 2}, gen);
  MSELoss<double> mse;
  CHECK(gradcheck(mse, x, t).ok);
  // the same loss with its gradient halved: a loss whose backward is wrong must fail
  struct HalfMSE : MSELoss<double> {
    using MSELoss<double>::backward;
    const Tensor<double>& backward(const Tensor<double>& g) override {
      half = MSELoss<double>::backward(g);
      half.vector() *= 0.5;
      return half;
    }
    Tensor<double> half;
  } wrong;
  CHECK_FALSE(gradcheck(wrong, x, t).ok);
}
