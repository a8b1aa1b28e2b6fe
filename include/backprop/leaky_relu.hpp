// SPDX-License-Identifier: MIT
// backprop: LeakyReLU, y = x if x > 0 else negative_slope * x, with its hand-written backward.
#pragma once

#include "module.hpp"

namespace backprop {

/// y = x where x > 0, negative_slope * x elsewhere, as torch.nn.LeakyReLU
/// (https://pytorch.org/docs/stable/generated/torch.nn.LeakyReLU.html). Any shape.
/// The slope used at x = 0 is negative_slope, and a NaN x gives y = NaN and
/// dL/dx = negative_slope * dy: both as PyTorch (its backward tests x > 0).
/// Derivation: docs/math/activations_and_losses.md   Proof: tests/test_leaky_relu.cpp
/// Example: LeakyReLU<float> act(0.2); const Tensor<float>& y = act.forward(x);
template <typename T>
class LeakyReLU : public Module<T> {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope_(negative_slope) {}

  // x -> y, same shape. Saves x, but not under a NoGradGuard, where no backward() follows.
  const Tensor<T>& forward(const Tensor<T>& x) override {
    saved_ = is_grad_enabled();
    if (saved_) input_.resize(x.shape());
    output_.resize(x.shape());
    const T slope = T(negative_slope_);
    for (Index i = 0, n = x.numel(); i < n; ++i) {
      const T v = x[i];
      if (saved_) input_[i] = v;
      output_[i] = v > T(0) ? v : v * slope;
    }
    return output_;
  }

  // dL/dx = dy * (x > 0 ? 1 : negative_slope)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    detail::check(saved_, "LeakyReLU::backward",
                  "called before forward, or after a forward under NoGradGuard");
    detail::check_grad_output_shape(grad_output.shape(), input_.shape(), "LeakyReLU::backward");
    grad_input_.resize(input_.shape());
    const T slope = T(negative_slope_);
    for (Index i = 0, n = input_.numel(); i < n; ++i) {
      const T g = grad_output[i];
      grad_input_[i] = input_[i] > T(0) ? g : g * slope;
    }
    return grad_input_;
  }

  double negative_slope() const { return negative_slope_; }

 private:
  double negative_slope_;
  bool saved_ = false;             // whether the last forward saved x
  Tensor<T> input_;                // saved x
  Tensor<T> output_, grad_input_;  // reused buffers
};

}  // namespace backprop
