// SPDX-License-Identifier: MIT
// backprop: Linear, y = x W^T + b, with its hand-written backward pass.
#pragma once

#include <cmath>

#include "detail/gemm.hpp"
#include "module.hpp"
#include "parallel.hpp"
#include "random.hpp"

namespace backprop {

/// y = x W^T + b, as torch.nn.Linear
/// (https://pytorch.org/docs/stable/generated/torch.nn.Linear.html).
/// W and b start uniform in [-1/sqrt(in_features), 1/sqrt(in_features)), PyTorch's default.
/// Derivation: docs/math/linear.md   Proof: tests/test_linear.cpp
/// Example: Linear<float> fc(784, 300); const Tensor<float>& y = fc.forward(x);
template <typename T>
class Linear : public Module<T> {
 public:
  Linear(Index in_features, Index out_features, bool with_bias = true)
      : Linear(in_features, out_features, with_bias, default_generator()) {}
  Linear(Index in_features, Index out_features, bool with_bias, Generator& gen)
      : in_features_(in_features), out_features_(out_features), has_bias_(with_bias) {
    detail::check(in_features > 0, "Linear", "in_features must be positive, got ", in_features);
    detail::check(out_features > 0, "Linear", "out_features must be positive, got ", out_features);
    // kaiming_uniform_(a = sqrt(5)) reduces to this bound; the bias uses the same one.
    const T bound = T(1) / std::sqrt(static_cast<T>(in_features));
    weight = Tensor<T>::rand({out_features, in_features}, gen, -bound, bound);
    grad_weight = Tensor<T>::zeros({out_features, in_features});
    if (has_bias_) {
      bias = Tensor<T>::rand({out_features}, gen, -bound, bound);
      grad_bias = Tensor<T>::zeros({out_features});
    }
  }

  // x: (N, in) -> y: (N, out). Saves a copy of x (so the caller may reuse its buffer), but
  // under a NoGradGuard, where no backward() follows, reads x in place.
  const Tensor<T>& forward(const Tensor<T>& x) override {
    detail::check(x.dim() == 2, "Linear::forward", "x must be 2-D (N, in_features), got shape ",
                  detail::shape_str(x.shape()));
    detail::check(x.size(1) == in_features_, "Linear::forward", "x has ", x.size(1),
                  " columns, expected in_features = ", in_features_);
    // x may be this layer's own output, which the product overwrites: then copy it anyway.
    const bool save = is_grad_enabled() || x.data() == output_.data();
    if (save) {
      input_.resize(x.shape());
      input_.vector() = x.vector();
    } else {
      input_.resize({0});  // backward() refuses (its storage is kept for the next forward)
    }
    const T* in_data = save ? input_.data() : x.data();
    output_.resize({x.size(0), out_features_});
    // y = x W^T; W read column-major is W^T. Large products run on set_num_threads()
    // threads (detail/gemm.hpp).
    const Index batch = x.size(0), in = in_features_, out = out_features_;
    detail::gemm<T>(batch, out, in, {in_data, in, true}, {weight.data(), in, false}, output_.data(),
                    out);
    if (has_bias_) output_.matrix().rowwise() += bias.vector().transpose();
    return output_;
  }

  // dy = grad_output (N, out). Accumulates into grad_* (writes a none one), returns dL/dx.
  //   dL/dW += dy^T * x     (out, in)
  //   dL/db += sum_n dy     (out)
  //   dL/dx  = dy * W       (N, in)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    detail::check(input_.dim() == 2, "Linear::backward",
                  "called before forward, or after a forward under NoGradGuard");
    detail::check_grad_output_shape(grad_output.shape(), output_.shape(), "Linear::backward");
    const Index batch = input_.size(0), in = in_features_, out = out_features_;
    const T* dy = grad_output.data();
    // dW += dy^T x (or dW = dy^T x when none); dy read column-major is dy^T.
    const auto product =
        accumulates_into(grad_weight, weight) ? detail::gemm_add<T> : detail::gemm<T>;
    product(out, in, batch, {dy, out, false}, {input_.data(), in, true}, grad_weight.data(), in);
    if (has_bias_)
      accumulate_grad(grad_bias, bias, grad_output.matrix().colwise().sum().transpose());
    if (!this->input_requires_grad()) {  // first layer: dL/dx is never read
      grad_input_.resize({0});
      return grad_input_;
    }
    // dx = dy W
    grad_input_.resize(input_.shape());
    detail::gemm<T>(batch, in, out, {dy, out, true}, {weight.data(), in, true}, grad_input_.data(),
                    in);
    return grad_input_;
  }

  void visit(StateVisitor<T>& v) override {
    v.parameter("weight", weight, grad_weight);
    if (has_bias_) v.parameter("bias", bias, grad_bias);
  }

  Index in_features() const { return in_features_; }
  Index out_features() const { return out_features_; }

  Tensor<T> weight, bias, grad_weight, grad_bias;  // W (out, in), b (out): PyTorch shapes

 private:
  Index in_features_, out_features_;
  bool has_bias_;
  Tensor<T> input_;                // saved x (N, in)
  Tensor<T> output_, grad_input_;  // reused buffers
};

}  // namespace backprop
