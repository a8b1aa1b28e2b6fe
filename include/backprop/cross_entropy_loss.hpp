// SPDX-License-Identifier: MIT
// backprop: CrossEntropyLoss from logits and class indices, with its hand-written backward.
#pragma once

#include <cmath>
#include <cstdint>

#include "loss.hpp"
#include "tensor.hpp"

namespace backprop {

/// Softmax cross-entropy from raw scores (logits) and integer class labels, as
/// torch.nn.CrossEntropyLoss
/// (https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html):
///   loss_n = log(sum_c exp(x_nc)) - x_{n, t_n},  L = mean_n loss_n, sum_n loss_n, or the
///   tensor loss (N) for Reduction::None.
/// Computed with log-sum-exp shifted by the row maximum, so large logits never overflow.
/// Targets are class indices, Tensor<std::int64_t> (see Loss). PyTorch's weight, ignore_index
/// and label_smoothing are not implemented.
/// Derivation: docs/math/cross_entropy_loss.md   Proof: tests/test_cross_entropy_loss.cpp
/// Example: CrossEntropyLoss<float> criterion; float loss = criterion.forward(logits, labels);
template <typename T>
class CrossEntropyLoss : public Loss<T, Tensor<std::int64_t>> {
  using Base = Loss<T, Tensor<std::int64_t>>;

 public:
  explicit CrossEntropyLoss(Reduction reduction = Reduction::Mean)
      : Base(reduction, "CrossEntropyLoss") {}
  using Base::backward;

  // input = x: logits (N, C); target = t: labels (N) in [0, C). Returns L ([]), or loss_n
  // (N) for None. Saves p = softmax(x) (N, C) and t.
  const Tensor<T>& forward_tensor(const Tensor<T>& input,
                                  const Tensor<std::int64_t>& target) override {
    this->require(input.dim() == 2, "forward", "input must be 2-D (N, C) logits, got shape ",
                  detail::shape_str(input.shape()));
    this->require(target.dim() == 1 && target.size(0) == input.size(0), "forward",
                  "target has shape ", detail::shape_str(target.shape()), ", expected [",
                  input.size(0), "]");
    this->require(input.size(0) > 0, "forward", "input has no rows");
    const Index n = input.size(0), c = input.size(1);
    for (Index i = 0; i < n; ++i)
      this->require(target[i] >= 0 && target[i] < c, "forward", "target[", i, "] = ", target[i],
                    " is out of range for ", c, " classes");
    const typename Tensor<T>::ConstMatrixMap x = input.matrix();
    probs_.resize(input.shape());
    typename Tensor<T>::MatrixMap p = probs_.matrix();
    target_.resize(target.shape());
    target_.vector() = target.vector();
    const bool none = this->reduction_ == Reduction::None;
    output_.resize(none ? Shape{n} : Shape{});
    T total = 0;
    for (Index i = 0; i < n; ++i) {
      const T row_max = x.row(i).maxCoeff();
      p.row(i) = (x.row(i).array() - row_max).exp().matrix();  // exp(x - max), (C)
      const T sum = p.row(i).sum();
      // lse(x) - x_t = (max - x_t) + log(sum): the large terms cancel first, exactly
      const T loss_i = (row_max - x(i, target[i])) + std::log(sum);
      if (none) output_[i] = loss_i;
      total += loss_i;
      p.row(i) /= sum;  // softmax
    }
    scale_ = this->scale(n);
    if (!none) output_[0] = total * scale_;
    return output_;
  }

  // g = grad_output: a scalar for Mean/Sum, g_n (N) for None; scale = 1/N (Mean) or 1.
  //   dL/dx_nc = g * scale * (p_nc - 1[c = t_n])           (N, C)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    this->check_backward(probs_.dim() == 2, grad_output, output_);
    grad_input_.resize(probs_.shape());
    typename Tensor<T>::MatrixMap dx = grad_input_.matrix();
    dx = probs_.matrix();
    for (Index i = 0; i < dx.rows(); ++i) {
      dx(i, target_[i]) -= T(1);
      dx.row(i) *= this->grad_at(grad_output, i) * scale_;
    }
    return grad_input_;
  }

 private:
  T scale_ = T(1);
  Tensor<std::int64_t> target_;  // saved labels (N)
  Tensor<T> probs_;              // saved softmax (N, C)
  Tensor<T> output_;             // the loss, [] or (N)
  Tensor<T> grad_input_;         // reused buffer
};

/// How many rows of logits (N, C) have their largest value at the target label (ties go to
/// the first index, as torch.max on CPU).
template <typename T>
Index num_correct(const Tensor<T>& logits, const Tensor<std::int64_t>& target) {
  detail::check(logits.dim() == 2 && target.dim() == 1 && target.size(0) == logits.size(0),
                "num_correct", "logits ", detail::shape_str(logits.shape()), " and target ",
                detail::shape_str(target.shape()), " do not match");
  const typename Tensor<T>::ConstMatrixMap x = logits.matrix();
  Index correct = 0;
  for (Index i = 0; i < x.rows(); ++i) {
    Index best = 0;
    x.row(i).maxCoeff(&best);
    correct += best == target[i];
  }
  return correct;
}

}  // namespace backprop
