// SPDX-License-Identifier: MIT
// backprop: Tanh, y = tanh(x), with its hand-written backward pass.
#pragma once

#include <cmath>

#include "module.hpp"

namespace backprop {

/// y = tanh(x) elementwise, as torch.nn.Tanh
/// (https://pytorch.org/docs/stable/generated/torch.nn.Tanh.html). Any shape.
/// NaN stays NaN, in y and in dL/dx (as PyTorch).
/// Derivation: docs/math/activations_and_losses.md   Proof: tests/test_tanh.cpp
/// Example: Tanh<float> tanh; const Tensor<float>& y = tanh.forward(x);
template <typename T>
class Tanh : public Module<T> {
 public:
  Tanh() = default;

  // x -> y = tanh(x), same shape. Saves y (std::tanh: Eigen's vectorised tanh is an
  // approximation whose error depends on the instruction set).
  const Tensor<T>& forward(const Tensor<T>& x) override {
    output_.resize(x.shape());
    for (Index i = 0, n = x.numel(); i < n; ++i) output_[i] = std::tanh(x[i]);
    return output_;
  }

  // dL/dx = dy * (1 - y^2)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    detail::check_grad_output_shape(grad_output.shape(), output_.shape(), "Tanh::backward");
    grad_input_.resize(output_.shape());
    grad_input_.vector() =
        grad_output.vector().cwiseProduct((T(1) - output_.vector().array().square()).matrix());
    return grad_input_;
  }

 private:
  Tensor<T> output_;      // saved y
  Tensor<T> grad_input_;  // reused buffer
};

}  // namespace backprop
