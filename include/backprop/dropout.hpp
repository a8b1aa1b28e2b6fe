// SPDX-License-Identifier: MIT
// backprop: Dropout, inverted dropout with reproducible masks, with its hand-written backward.
#pragma once

#include "module.hpp"
#include "random.hpp"

namespace backprop {

/// Zeroes each element with probability p in training and scales the kept ones by
/// 1 / (1 - p), as torch.nn.Dropout
/// (https://pytorch.org/docs/stable/generated/torch.nn.Dropout.html);
/// eval() is the identity. Any shape. As ATen's dropout: p = 0 is the identity and draws
/// nothing; p = 1 gives y = x * 0 (zeros, NaN for a NaN x) and a zero gradient.
/// The mask comes from a Generator (random.hpp): default_generator() unless one is given,
/// so manual_seed(s) makes every mask reproducible, bit for bit on any machine. Element i
/// is kept when a uniform double in [0, 1) is below 1 - p: one draw per element, in
/// row-major order, for float and double alike (the same seed gives the same mask in both).
/// Derivation: docs/math/activations_and_losses.md   Proof: tests/test_dropout.cpp
/// Example: Dropout<float> drop(0.2); const Tensor<float>& y = drop.forward(x);
template <typename T>
class Dropout : public Module<T> {
 public:
  explicit Dropout(double p = 0.5) : Dropout(p, default_generator()) {}
  /// Masks drawn from gen, which must outlive the layer.
  Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
    detail::check(p >= 0 && p <= 1, "Dropout",
                  "dropout probability has to be between 0 and 1, but got ", p);
  }

  // x -> y = x * mask, same shape; mask_i = 1/(1 - p) with probability 1 - p, else 0.
  // Training only (and only for 0 < p): eval() and p = 0 give y = x, mask = 1.
  // Saves mask.
  const Tensor<T>& forward(const Tensor<T>& x) override {
    const Index n = x.numel();
    mask_.resize(x.shape());
    output_.resize(x.shape());
    identity_ = !this->is_training() || p_ == 0;
    if (identity_) {
      mask_.fill_(T(1));
      output_.vector() = x.vector();
      return output_;
    }
    // 1/(1 - p) rounded to T once, as ATen's noise.div_(1 - p) on a mask of ones.
    const T kept = p_ == 1 ? T(0) : T(1) / T(1 - p_);
    const double keep = 1 - p_;
    for (Index i = 0; i < n; ++i) {
      mask_[i] = gen_->uniform<double>() < keep ? kept : T(0);
      output_[i] = x[i] * mask_[i];
    }
    return output_;
  }

  // dL/dx = dy * mask          (dy in eval mode and for p = 0)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    detail::check_grad_output_shape(grad_output.shape(), output_.shape(), "Dropout::backward");
    grad_input_.resize(output_.shape());
    if (identity_)
      grad_input_.vector() = grad_output.vector();
    else
      grad_input_.vector() = grad_output.vector().cwiseProduct(mask_.vector());
    return grad_input_;
  }

  double p() const { return p_; }
  /// The mask of the last forward: 0 or 1/(1 - p) per element (all 1 when it was the
  /// identity).
  const Tensor<T>& mask() const { return mask_; }

 private:
  double p_;
  Generator* gen_;
  bool identity_ = true;
  Tensor<T> mask_;                 // saved: 0 or 1/(1 - p)
  Tensor<T> output_, grad_input_;  // reused buffers
};

}  // namespace backprop
