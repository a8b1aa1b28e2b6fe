// SPDX-License-Identifier: MIT
// backprop: GELU, y = x * Phi(x) (exact or tanh approximation), with its hand-written backward.
#pragma once

#include <cmath>
#include <string>
#include <utility>

#include "module.hpp"

namespace backprop {

/// The Gaussian error linear unit, elementwise, as torch.nn.GELU
/// (https://pytorch.org/docs/stable/generated/torch.nn.GELU.html). Any shape.
///   approximate = "none" (default): y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)));
///   approximate = "tanh":           y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
/// NaN stays NaN, in y and in dL/dx (as PyTorch).
/// Derivation: docs/math/activations_and_losses.md   Proof: tests/test_gelu.cpp
/// Example: GELU<float> gelu("tanh"); const Tensor<float>& y = gelu.forward(x);
template <typename T>
class GELU : public Module<T> {
 public:
  explicit GELU(std::string approximate = "none") : approximate_(std::move(approximate)) {
    detail::check(approximate_ == "none" || approximate_ == "tanh", "GELU",
                  "approximate must be 'none' or 'tanh', got '", approximate_, "'");
    tanh_ = approximate_ == "tanh";
  }

  // x -> y, same shape. Saves x, but not under a NoGradGuard, where no backward() follows.
  //   none: y = 0.5 x (1 + erf(x / sqrt 2))
  //   tanh: u = sqrt(2/pi) (x + kappa x^3), kappa = 0.044715;  y = 0.5 x (1 + tanh u)
  const Tensor<T>& forward(const Tensor<T>& x) override {
    saved_ = is_grad_enabled();
    if (saved_) {
      input_.resize(x.shape());
      input_.vector() = x.vector();
    }
    output_.resize(x.shape());
    for (Index i = 0, n = x.numel(); i < n; ++i) {
      const T v = x[i];
      output_[i] = tanh_ ? T(0.5) * v * (T(1) + std::tanh(k_beta * (v + k_kappa * v * v * v)))
                         : T(0.5) * v * (T(1) + std::erf(v * k_sqrt1_2));
    }
    return output_;
  }

  //   none: dL/dx = dy * (Phi(x) + x * phi(x)),  Phi = 0.5 (1 + erf(x / sqrt 2)),
  //                 phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
  //   tanh: dL/dx = dy * (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 kappa x^2))
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    detail::check(saved_, "GELU::backward",
                  "called before forward, or after a forward under NoGradGuard");
    detail::check_grad_output_shape(grad_output.shape(), input_.shape(), "GELU::backward");
    grad_input_.resize(input_.shape());
    for (Index i = 0, n = input_.numel(); i < n; ++i) {
      const T v = input_[i];
      T slope;
      if (tanh_) {
        const T th = std::tanh(k_beta * (v + k_kappa * v * v * v));
        // term 1: d(0.5 x)/dx (1 + tanh u); term 2: 0.5 x d(tanh u)/du du/dx
        slope = T(0.5) * (T(1) + th) +
                T(0.5) * v * (T(1) - th * th) * k_beta * (T(1) + T(3) * k_kappa * v * v);
      } else {
        const T cdf = T(0.5) * (T(1) + std::erf(v * k_sqrt1_2));   // Phi(x)
        const T pdf = std::exp(T(-0.5) * v * v) * k_inv_sqrt_2pi;  // phi(x)
        slope = cdf + v * pdf;
      }
      grad_input_[i] = grad_output[i] * slope;
    }
    return grad_input_;
  }

  const std::string& approximate() const { return approximate_; }

 private:
  static constexpr T k_sqrt1_2 = T(0.70710678118654752440);       // 1 / sqrt(2)
  static constexpr T k_inv_sqrt_2pi = T(0.39894228040143267794);  // 1 / sqrt(2 pi)
  static constexpr T k_beta = T(0.79788456080286535588);          // sqrt(2 / pi)
  static constexpr T k_kappa = T(0.044715);

  std::string approximate_;
  bool tanh_ = false;
  bool saved_ = false;             // whether the last forward saved x
  Tensor<T> input_;                // saved x
  Tensor<T> output_, grad_input_;  // reused buffers
};

}  // namespace backprop
