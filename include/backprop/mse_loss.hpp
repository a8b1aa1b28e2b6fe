// SPDX-License-Identifier: MIT
// backprop: MSELoss, the mean squared error, with its hand-written backward.
#pragma once

#include "loss.hpp"

namespace backprop {

/// The squared error between input and target, as torch.nn.MSELoss
/// (https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html):
///   loss_i = (x_i - t_i)^2 for every element i;  L = mean_i loss_i (over all elements, not
///   per row), sum_i loss_i, or the tensor loss (input's shape) for Reduction::None.
/// input and target: the same shape, any rank (PyTorch would broadcast; we require equality).
/// Derivation: docs/math/activations_and_losses.md   Proof: tests/test_mse_loss.cpp
/// Example: MSELoss<float> criterion; float loss = criterion.forward(prediction, target);
template <typename T>
class MSELoss : public Loss<T> {
 public:
  explicit MSELoss(Reduction reduction = Reduction::Mean) : Loss<T>(reduction, "MSELoss") {}
  using Loss<T>::backward;

  // x = input, t = target, same shape. Saves diff = x - t.
  const Tensor<T>& forward_tensor(const Tensor<T>& input, const Tensor<T>& target) override {
    this->check_forward(input, target);
    diff_.resize(input.shape());
    diff_.vector() = input.vector() - target.vector();
    output_.resize(this->output_shape(input.shape()));
    if (this->reduction_ == Reduction::None)
      output_.vector() = diff_.vector().array().square().matrix();
    else
      output_[0] = diff_.vector().squaredNorm() * this->scale(input.numel());
    ran_ = true;
    return output_;
  }

  // g = grad_output (a scalar for Mean/Sum, else the input's shape); scale = 1/numel (Mean)
  // or 1.
  //   dL/dx_i = g * scale * 2 * diff_i
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(ran_, grad_output, output_);
    grad_input_.resize(diff_.shape());
    if (this->reduction_ == Reduction::None)
      grad_input_.vector() = T(2) * diff_.vector().cwiseProduct(grad_output.vector());
    else
      grad_input_.vector() = (grad_output[0] * this->scale(diff_.numel()) * T(2)) * diff_.vector();
    return grad_input_;
  }

 private:
  bool ran_ = false;
  Tensor<T> diff_;                 // saved x - t
  Tensor<T> output_, grad_input_;  // the loss ([] or x's shape), reused buffer
};

}  // namespace backprop
