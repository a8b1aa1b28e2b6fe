// SPDX-License-Identifier: MIT
// backprop: Adam (L2 weight decay) and AdamW (decoupled weight decay), with AMSGrad.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "module.hpp"
#include "optimizer.hpp"

namespace backprop {

/// Adam, as torch.optim.Adam (https://pytorch.org/docs/stable/generated/torch.optim.Adam.html),
/// PyTorch 1.13's update rule (its single-tensor path, the CPU default) step for step.
/// Derivation: docs/math/adam.md   Proof: tests/test_adam.cpp
/// Example: Adam<float> optimizer(model.parameters(), /*lr=*/1e-3);
template <typename T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Parameter<T>> parameters, double lr = 1e-3,
       std::pair<double, double> betas = {0.9, 0.999}, double eps = 1e-8, double weight_decay = 0,
       bool amsgrad = false)
      : Adam(std::move(parameters), lr, betas, eps, weight_decay, amsgrad, false, "Adam") {}

  // t = step, counted from 1 (PyTorch's state["step"]); g = grad; for each element:
  //   Adam:  g = g + weight_decay * p                           (L2, before the moments)
  //   AdamW: p = p * (1 - lr * weight_decay)                    (decoupled, before the update)
  //   exp_avg    = beta1 * exp_avg    + (1 - beta1) * g         (m_t; both start at 0)
  //   exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g     (v_t)
  //   amsgrad: max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq), used instead of exp_avg_sq
  //   step_size = lr / (1 - beta1^t)                            (bias correction of m)
  //   denom     = sqrt(exp_avg_sq) / sqrt(1 - beta2^t) + eps    (eps outside the sqrt, after
  //                                                              the correction of v)
  //   p = p - step_size * exp_avg / denom
  // The scalars are computed in double and rounded to T, as PyTorch passes Python floats.
  void step() override {
    if (!this->has_gradients()) return;
    std::vector<Parameter<T>>& params = this->parameters_;
    if (exp_avg_.empty()) {  // PyTorch's lazy state init: zeros on the first step
      for (const Parameter<T>& p : params) {
        exp_avg_.push_back(Tensor<T>::zeros(p.value->shape()));
        exp_avg_sq_.push_back(Tensor<T>::zeros(p.value->shape()));
        if (amsgrad_) max_exp_avg_sq_.push_back(Tensor<T>::zeros(p.value->shape()));
      }
    }
    ++step_;
    const double lr = this->lr_;
    const double t = static_cast<double>(step_);
    const T beta1 = T(beta1_), beta2 = T(beta2_), keep1 = T(1 - beta1_), keep2 = T(1 - beta2_);
    const T step_size = T(lr / (1 - std::pow(beta1_, t)));
    const T bias_correction2_sqrt = T(std::sqrt(1 - std::pow(beta2_, t)));
    const T eps = T(eps_), wd = T(weight_decay_), decay = T(1 - lr * weight_decay_);
    for (std::size_t i = 0; i < params.size(); ++i) {
      T* p = params[i].value->data();
      const T* grad = std::as_const(*params[i].grad).data();
      T* m = exp_avg_[i].data();
      T* v = exp_avg_sq_[i].data();
      T* v_max = amsgrad_ ? max_exp_avg_sq_[i].data() : nullptr;
      const Index n = params[i].value->numel();
      for (Index j = 0; j < n; ++j) {
        T g = grad[j];
        if (decoupled_)
          p[j] = p[j] * decay;  // AdamW (PyTorch multiplies even when weight_decay = 0)
        else if (weight_decay_ != 0)
          g = g + wd * p[j];  // Adam: L2 penalty in the gradient
        m[j] = m[j] * beta1 + keep1 * g;
        v[j] = v[j] * beta2 + keep2 * g * g;
        T v_hat = v[j];
        if (v_max) v_hat = v_max[j] = std::max(v_max[j], v[j]);
        const T denom = std::sqrt(v_hat) / bias_correction2_sqrt + eps;
        p[j] = p[j] + -step_size * m[j] / denom;  // addcdiv_: p + (value * m) / denom
      }
    }
  }

  const char* name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  /// PyTorch's state: "step", "exp_avg", "exp_avg_sq" and, with amsgrad, "max_exp_avg_sq".
  void visit_state(OptimizerStateVisitor<T>& visitor) override {
    visitor.counter("step", step_);
    visitor.tensors("exp_avg", exp_avg_);
    visitor.tensors("exp_avg_sq", exp_avg_sq_);
    if (amsgrad_) visitor.tensors("max_exp_avg_sq", max_exp_avg_sq_);
  }
  std::vector<std::pair<const char*, double>> hyperparameters() const override {
    return {{"beta1", beta1_},
            {"beta2", beta2_},
            {"eps", eps_},
            {"weight_decay", weight_decay_},
            {"amsgrad", amsgrad_ ? 1.0 : 0.0}};
  }

  std::int64_t step_count() const { return step_; }
  /// One tensor per parameter, in parameters() order; empty until the first step().
  std::vector<Tensor<T>>& exp_avg() { return exp_avg_; }
  std::vector<Tensor<T>>& exp_avg_sq() { return exp_avg_sq_; }
  std::vector<Tensor<T>>& max_exp_avg_sq() { return max_exp_avg_sq_; }

 protected:
  Adam(std::vector<Parameter<T>> parameters, double lr, std::pair<double, double> betas, double eps,
       double weight_decay, bool amsgrad, bool decoupled, const char* who)
      : Optimizer<T>(std::move(parameters), lr, who),
        beta1_(betas.first),
        beta2_(betas.second),
        eps_(eps),
        weight_decay_(weight_decay),
        amsgrad_(amsgrad),
        decoupled_(decoupled) {
    detail::check(eps >= 0, who, "eps must be >= 0, got ", eps);
    detail::check(beta1_ >= 0 && beta1_ < 1, who, "beta1 must be in [0, 1), got ", beta1_);
    detail::check(beta2_ >= 0 && beta2_ < 1, who, "beta2 must be in [0, 1), got ", beta2_);
    detail::check(weight_decay >= 0, who, "weight_decay must be >= 0, got ", weight_decay);
  }

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  bool amsgrad_, decoupled_;
  std::int64_t step_ = 0;
  std::vector<Tensor<T>> exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
};

/// AdamW, as torch.optim.AdamW (https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html):
/// Adam with decoupled weight decay, p *= 1 - lr * weight_decay before the Adam update, in
/// place of Adam's L2 term in the gradient (Loshchilov and Hutter). Default weight_decay 1e-2.
/// Derivation: docs/math/adam.md   Proof: tests/test_adam.cpp
/// Example: AdamW<float> optimizer(model.parameters(), 1e-3, {0.9, 0.999}, 1e-8, 0.01);
template <typename T>
class AdamW : public Adam<T> {
 public:
  AdamW(std::vector<Parameter<T>> parameters, double lr = 1e-3,
        std::pair<double, double> betas = {0.9, 0.999}, double eps = 1e-8,
        double weight_decay = 1e-2, bool amsgrad = false)
      : Adam<T>(std::move(parameters), lr, betas, eps, weight_decay, amsgrad, true, "AdamW") {}
};

}  // namespace backprop
