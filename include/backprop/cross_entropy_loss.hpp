// SPDX-License-Identifier: MIT
// backprop: CrossEntropyLoss from logits and class indices, with its hand-written backward.
#pragma once

#include <cmath>
#include <cstdint>

#include "tensor.hpp"

namespace backprop {

enum class Reduction { Mean, Sum };

/// Softmax cross-entropy from raw scores (logits) and integer class labels, as
/// torch.nn.CrossEntropyLoss (https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html):
///   loss_n = log(sum_c exp(x_nc)) - x_{n, t_n},  L = mean_n loss_n (or sum).
/// Computed with log-sum-exp shifted by the row maximum, so large logits never overflow.
/// Derivation: docs/math/cross_entropy_loss.md   Proof: tests/test_cross_entropy_loss.cpp
/// Example: CrossEntropyLoss<float> criterion; float loss = criterion.forward(logits, labels);
template <typename T>
class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(Reduction reduction = Reduction::Mean) : reduction_(reduction) {}

  // input = x: logits (N, C); target = t: labels (N) in [0, C). Returns L.
  // Saves p = softmax(x) (N, C) and t.
  T forward(const Tensor<T>& input, const Tensor<std::int64_t>& target) {
    detail::check(input.dim() == 2, "CrossEntropyLoss::forward",
                  "input must be 2-D (N, C) logits, got shape ", detail::shape_str(input.shape()));
    detail::check(target.dim() == 1 && target.size(0) == input.size(0),
                  "CrossEntropyLoss::forward", "target has shape ",
                  detail::shape_str(target.shape()), ", expected [", input.size(0), "]");
    detail::check(input.size(0) > 0, "CrossEntropyLoss::forward", "input has no rows");
    const Index n = input.size(0), c = input.size(1);
    for (Index i = 0; i < n; ++i)
      detail::check(target[i] >= 0 && target[i] < c, "CrossEntropyLoss::forward", "target[", i,
                    "] = ", target[i], " is out of range for ", c, " classes");
    const typename Tensor<T>::ConstMatrixMap x = input.matrix();
    probs_.resize(input.shape());
    typename Tensor<T>::MatrixMap p = probs_.matrix();
    target_.resize(target.shape());
    target_.vector() = target.vector();
    T total = 0;
    for (Index i = 0; i < n; ++i) {
      const T row_max = x.row(i).maxCoeff();
      p.row(i) = (x.row(i).array() - row_max).exp().matrix();       // exp(x - max), (C)
      const T sum = p.row(i).sum();
      // lse(x) - x_t = (max - x_t) + log(sum): the large terms cancel first, exactly
      total += (row_max - x(i, target[i])) + std::log(sum);
      p.row(i) /= sum;                                              // softmax
    }
    scale_ = reduction_ == Reduction::Mean ? T(1) / T(n) : T(1);
    return total * scale_;
  }

  // dL/dx_nc = grad_output * scale * (p_nc - 1[c = t_n]),  scale = 1/N (mean) or 1 (sum).
  const Tensor<T>& backward(T grad_output = T(1)) {
    detail::check(probs_.dim() == 2, "CrossEntropyLoss::backward", "called before forward");
    grad_input_.resize(probs_.shape());
    typename Tensor<T>::MatrixMap dx = grad_input_.matrix();
    dx = probs_.matrix();
    for (Index i = 0; i < dx.rows(); ++i) dx(i, target_[i]) -= T(1);
    dx *= grad_output * scale_;
    return grad_input_;
  }

 private:
  Reduction reduction_;
  T scale_ = T(1);
  Tensor<std::int64_t> target_;  // saved labels (N)
  Tensor<T> probs_;              // saved softmax (N, C)
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
