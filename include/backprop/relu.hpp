// SPDX-License-Identifier: MIT
// backprop: ReLU, y = max(x, 0), with its hand-written backward pass.
#pragma once

#include "module.hpp"

namespace backprop {

/// y = max(x, 0) elementwise, as torch.nn.ReLU
/// (https://pytorch.org/docs/stable/generated/torch.nn.ReLU.html). Any shape.
/// Derivation: docs/math/relu.md   Proof: tests/test_relu.cpp
/// Example: ReLU<float> relu; const Tensor<float>& y = relu.forward(x);
template <typename T>
class ReLU : public Module<T> {
 public:
  ReLU() = default;

  // x -> y = max(x, 0), same shape. Saves y: y > 0 exactly where x > 0.
  // NaN stays NaN, written out rather than left to Eigen's cwiseMax, whose NaN result
  // depends on the instruction set (x < 0 is false for NaN, so y = x). -0.0 stays -0.0, as
  // PyTorch's clamp_min.
  const Tensor<T>& forward(const Tensor<T>& x) override {
    output_.resize(x.shape());
    const T* in = x.data();
    T* y = output_.data();
    for (Index i = 0, n = x.numel(); i < n; ++i) {
      const T v = in[i];
      y[i] = v < T(0) ? T(0) : v;
    }
    return output_;
  }

  // dL/dx = dy * 1[y > 0]   (the subgradient at x = 0 is 0, as in PyTorch)
  // Written as PyTorch's threshold_backward, y <= 0 ? 0 : dy, so that NaN follows PyTorch
  // too: a NaN x (y = NaN) passes dy through, and a NaN in dy stays NaN where y > 0.
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    detail::check_grad_output_shape(grad_output.shape(), output_.shape(), "ReLU::backward");
    grad_input_.resize(output_.shape());
    // A plain loop, not Eigen's select(): Eigen 3.4 has no vectorised select, and clang 14
    // turns it into a branch per element that mispredicts on real activations (~10% of a
    // bn-mlp step). Loading dy first makes the ternary a blend that both compilers vectorise.
    const T* y = output_.data();
    const T* dy = grad_output.data();
    T* dx = grad_input_.data();
    for (Index i = 0, n = output_.numel(); i < n; ++i) {
      const T g = dy[i];
      dx[i] = y[i] <= T(0) ? T(0) : g;
    }
    return grad_input_;
  }

 private:
  Tensor<T> output_;      // saved y
  Tensor<T> grad_input_;  // reused buffer
};

}  // namespace backprop
