// SPDX-License-Identifier: MIT
// backprop: gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "module.hpp"

namespace backprop {

/// Scales all gradients together so that their total norm is at most max_norm, as
/// torch.nn.utils.clip_grad_norm_
/// (https://pytorch.org/docs/stable/generated/torch.nn.utils.clip_grad_norm_.html):
///   total     = ( sum_i ||g_i||_p^p )^(1/p)   the p-norm of all gradients as one vector
///               ( max_i max |g_i| for p = inf, norm_type = INFINITY )
///   clip_coef = min(max_norm / (total + 1e-6), 1)
///   g_i      *= clip_coef                     (PyTorch multiplies even when clip_coef = 1)
/// Returns the total norm before clipping. Norms are accumulated in double (a float
/// gradient's sum of squares then loses nothing to the order of the additions).
/// Proof: tests/test_clip_grad.cpp
/// Example: clip_grad_norm_(model.parameters(), 1.0); optimizer.step();
template <typename T>
T clip_grad_norm_(const std::vector<Parameter<T>>& parameters, double max_norm,
                  double norm_type = 2.0) {
  detail::check(norm_type > 0, "clip_grad_norm_", "norm_type must be > 0, got ", norm_type);
  if (parameters.empty()) return T(0);
  const bool inf = std::isinf(norm_type);
  // Per tensor, then the norm of the norms: PyTorch's torch.norm(stack([norm(g_i)])).
  double total = 0;
  for (const Parameter<T>& p : parameters) {
    double norm_i = 0;
    for (const T g : std::as_const(*p.grad)) {
      const double a = std::abs(static_cast<double>(g));
      norm_i =
          inf ? std::max(norm_i, a) : norm_i + (norm_type == 2 ? a * a : std::pow(a, norm_type));
    }
    if (inf)
      total = std::max(total, norm_i);
    else
      total +=
          std::pow(norm_type == 2 ? std::sqrt(norm_i) : std::pow(norm_i, 1 / norm_type), norm_type);
  }
  if (!inf) total = norm_type == 2 ? std::sqrt(total) : std::pow(total, 1 / norm_type);
  // PyTorch computes these in the gradients' dtype.
  const T total_t = T(total);
  const T clip_coef = std::min(T(max_norm) / (total_t + T(1e-6)), T(1));
  for (const Parameter<T>& p : parameters)
    for (T& g : *p.grad) g *= clip_coef;
  return total_t;
}

/// Clamps every gradient element to [-clip_value, clip_value], as
/// torch.nn.utils.clip_grad_value_.
/// Example: clip_grad_value_(model.parameters(), 0.5);
template <typename T>
void clip_grad_value_(const std::vector<Parameter<T>>& parameters, double clip_value) {
  detail::check(clip_value >= 0, "clip_grad_value_", "clip_value must be >= 0, got ", clip_value);
  const T c = T(clip_value);
  for (const Parameter<T>& p : parameters)
    for (T& g : *p.grad) g = std::clamp(g, -c, c);
}

}  // namespace backprop
