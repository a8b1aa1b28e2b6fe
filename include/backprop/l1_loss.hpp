// SPDX-License-Identifier: MIT
// backprop: L1Loss, the mean absolute error, with its hand-written backward.
#pragma once

#include <cmath>

#include "loss.hpp"

namespace backprop {

/// The absolute error between input and target, as torch.nn.L1Loss
/// (https://pytorch.org/docs/stable/generated/torch.nn.L1Loss.html):
///   loss_i = |x_i - t_i| for every element i;  L = mean_i loss_i (over all elements),
///   sum_i loss_i, or the tensor loss (input's shape) for Reduction::None.
/// input and target: the same shape, any rank. At x_i = t_i the subgradient is PyTorch's,
/// sign(0) = 0 (and a NaN difference gets gradient 0 too, as torch.sign's backward).
/// Derivation: docs/math/activations_and_losses.md   Proof: tests/test_l1_loss.cpp
/// Example: L1Loss<float> criterion; float loss = criterion.forward(prediction, target);
template <typename T>
class L1Loss : public Loss<T> {
 public:
  explicit L1Loss(Reduction reduction = Reduction::Mean) : Loss<T>(reduction, "L1Loss") {}
  using Loss<T>::backward;

  // x = input, t = target, same shape. Saves sign(x - t) in {-1, 0, 1}.
  const Tensor<T>& forward_tensor(const Tensor<T>& input, const Tensor<T>& target) override {
    this->check_forward(input, target);
    const Index n = input.numel();
    sign_.resize(input.shape());
    output_.resize(input.shape());  // |x - t| first, reduced below
    for (Index i = 0; i < n; ++i) {
      const T d = input[i] - target[i];
      output_[i] = std::abs(d);
      sign_[i] = d > T(0) ? T(1) : d < T(0) ? T(-1) : T(0);  // NaN and 0 -> 0
    }
    if (this->reduction_ != Reduction::None) {
      const T total = output_.vector().sum() * this->scale(n);
      output_.resize(Shape{});
      output_[0] = total;
    }
    ran_ = true;
    return output_;
  }

  // g = grad_output (a scalar for Mean/Sum, else the input's shape); scale = 1/numel (Mean)
  // or 1.
  //   dL/dx_i = g * scale * sign(x_i - t_i)          (sign(0) = 0)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(ran_, grad_output, output_);
    grad_input_.resize(sign_.shape());
    if (this->reduction_ == Reduction::None)
      grad_input_.vector() = sign_.vector().cwiseProduct(grad_output.vector());
    else
      grad_input_.vector() = (grad_output[0] * this->scale(sign_.numel())) * sign_.vector();
    return grad_input_;
  }

 private:
  bool ran_ = false;
  Tensor<T> sign_;                 // saved sign(x - t)
  Tensor<T> output_, grad_input_;  // the loss ([] or x's shape), reused buffer
};

}  // namespace backprop
