// SPDX-License-Identifier: MIT
// backprop: Sigmoid, y = 1 / (1 + exp(-x)), with its hand-written backward pass.
#pragma once

#include <cmath>
#include <utility>

#include "module.hpp"

namespace backprop {

/// y = 1 / (1 + exp(-x)) elementwise, as torch.nn.Sigmoid
/// (https://pytorch.org/docs/stable/generated/torch.nn.Sigmoid.html). Any shape.
/// Never overflows: for x < 0 it computes exp(x) / (1 + exp(x)). NaN stays NaN, in y and in
/// dL/dx (as PyTorch).
/// Derivation: docs/math/activations_and_losses.md   Proof: tests/test_sigmoid.cpp
/// Example: Sigmoid<float> sigmoid; const Tensor<float>& y = sigmoid.forward(x);
template <typename T>
class Sigmoid : public Module<T> {
 public:
  Sigmoid() = default;

  // x -> y = sigmoid(x), same shape. Saves y.
  const Tensor<T>& forward(const Tensor<T>& x) override {
    output_.resize(x.shape());
    for (Index i = 0, n = x.numel(); i < n; ++i) {
      const T e = std::exp(-std::abs(x[i]));  // in (0, 1], or NaN for a NaN x
      output_[i] = x[i] >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    }
    return output_;
  }

  // dL/dx = dy * y * (1 - y)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    detail::check_grad_output_shape(grad_output.shape(), output_.shape(), "Sigmoid::backward");
    grad_input_.resize(output_.shape());
    const typename Tensor<T>::ConstVectorMap y = std::as_const(output_).vector();
    grad_input_.vector() =
        grad_output.vector().cwiseProduct(y).cwiseProduct((T(1) - y.array()).matrix());
    return grad_input_;
  }

 private:
  Tensor<T> output_;      // saved y
  Tensor<T> grad_input_;  // reused buffer
};

}  // namespace backprop
