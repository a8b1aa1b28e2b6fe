// SPDX-License-Identifier: MIT
// backprop: BCEWithLogitsLoss, binary cross-entropy on logits, with its hand-written backward.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>

#include "loss.hpp"

namespace backprop {

/// Sigmoid and binary cross-entropy in one, as torch.nn.BCEWithLogitsLoss
/// (https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html):
///   loss_i = -(pw * t_i * log(sigmoid(x_i)) + (1 - t_i) * log(1 - sigmoid(x_i)))
///          = (1 - t_i) x_i + (1 + (pw - 1) t_i) softplus(-x_i)
/// for logits x and targets t in [0, 1] (probabilities, same shape, any rank). pos_weight
/// (optional, empty = 1) weights the positive term: one value per class of the last
/// dimension ((C) for a (N, C) input), or one value for all; PyTorch's `weight` argument is
/// not implemented. L = mean over all elements, sum, or the tensor (Reduction::None).
/// Stable for any |x|: softplus(-x) = max(-x, 0) + log1p(exp(-|x|)) never overflows, and
/// the gradient uses sigmoid(x) computed without exp of a positive number.
/// Derivation: docs/math/activations_and_losses.md   Proof: tests/test_bce_with_logits_loss.cpp
/// Example: BCEWithLogitsLoss<float> criterion(Reduction::Mean, pos_weight); criterion(x, t);
template <typename T>
class BCEWithLogitsLoss : public Loss<T> {
 public:
  explicit BCEWithLogitsLoss(Reduction reduction = Reduction::Mean,
                             Tensor<T> pos_weight = Tensor<T>())
      : Loss<T>(reduction, "BCEWithLogitsLoss"), pos_weight_(std::move(pos_weight)) {
    this->require(pos_weight_.dim() <= 1, "BCEWithLogitsLoss",
                  "pos_weight must be 1-D (C), got shape ", detail::shape_str(pos_weight_.shape()));
  }
  using Loss<T>::backward;

  // x = input (logits), t = target, same shape; pw = pos_weight[i % C] (or 1).
  // Saves s = sigmoid(x) and t.
  const Tensor<T>& forward_tensor(const Tensor<T>& input, const Tensor<T>& target) override {
    this->check_forward(input, target);
    const Index c = input.dim() == 0 ? 1 : input.size(-1);
    const Index k = pos_weight_.numel();
    this->require(k == 0 || k == 1 || k == c, "forward", "pos_weight has ", k,
                  " values, expected 1 or the input's last dimension ", c);
    const Index n = input.numel();
    sigmoid_.resize(input.shape());
    target_.resize(input.shape());
    target_.vector() = target.vector();
    output_.resize(input.shape());  // loss_i first, reduced below
    for (Index i = 0; i < n; ++i) {
      const T x = input[i], t = target[i];
      const T log_weight = T(1) + (pw(i, c) - T(1)) * t;  // 1 + (pw - 1) t
      const T e = std::exp(-std::abs(x));                 // in (0, 1]: no overflow
      // softplus(-x) = log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|))
      const T softplus_neg_x = std::max(-x, T(0)) + std::log1p(e);
      output_[i] = (T(1) - t) * x + log_weight * softplus_neg_x;
      sigmoid_[i] = x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);  // sigmoid(x)
    }
    if (this->reduction_ != Reduction::None) {
      const T total = output_.vector().sum() * this->scale(n);
      output_.resize(Shape{});
      output_[0] = total;
    }
    c_ = c;
    ran_ = true;
    return output_;
  }

  // g = grad_output (a scalar for Mean/Sum, else the input's shape); scale = 1/numel (Mean)
  // or 1;  s = sigmoid(x), log_weight = 1 + (pw - 1) t.
  //   dloss_i/dx_i = (1 - t) - log_weight * sigmoid(-x) = log_weight * s - pw * t
  //   dL/dx_i      = g * scale * (log_weight * s - pw * t)      (pw = 1: s - t)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(ran_, grad_output, output_);
    const Index n = sigmoid_.numel();
    const T scale = this->scale(n);
    grad_input_.resize(sigmoid_.shape());
    for (Index i = 0; i < n; ++i) {
      const T t = target_[i], p = pw(i, c_);
      const T log_weight = T(1) + (p - T(1)) * t;
      grad_input_[i] = this->grad_at(grad_output, i) * scale * (log_weight * sigmoid_[i] - p * t);
    }
    return grad_input_;
  }

  /// (C), (1), or empty (every pos_weight is 1).
  const Tensor<T>& pos_weight() const { return pos_weight_; }

 private:
  // pos_weight for element i of a tensor whose last dimension has c values.
  T pw(Index i, Index c) const {
    const Index k = pos_weight_.numel();
    return k == 0 ? T(1) : k == 1 ? pos_weight_[0] : pos_weight_[i % c];
  }

  Tensor<T> pos_weight_;
  bool ran_ = false;
  Index c_ = 1;
  Tensor<T> sigmoid_, target_;     // saved sigmoid(x) and t
  Tensor<T> output_, grad_input_;  // the loss ([] or x's shape), reused buffer
};

}  // namespace backprop
