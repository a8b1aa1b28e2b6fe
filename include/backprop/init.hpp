// SPDX-License-Identifier: MIT
// backprop::init: weight initialisations, as torch.nn.init (fan and gain rules included).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "random.hpp"
#include "tensor.hpp"

/// As torch.nn.init (https://pytorch.org/docs/stable/nn.init.html): each function fills a
/// tensor in place, draws from a Generator (default_generator() unless given) in storage
/// order, and returns the tensor.
/// Proof: tests/test_init.cpp
/// Example: init::kaiming_uniform_(fc.weight, 0, "fan_in", "relu");
namespace backprop::init {

/// PyTorch's recommended gain for a nonlinearity; `param` is leaky_relu's negative slope
/// (default 0.01 when NaN is passed, as None in PyTorch):
///   linear, conv*d, conv_transpose*d, sigmoid: 1   tanh: 5/3   relu: sqrt(2)
///   leaky_relu: sqrt(2 / (1 + param^2))            selu: 3/4
inline double calculate_gain(const std::string& nonlinearity, double param = std::nan("")) {
  const char* linear_fns[] = {"linear",           "conv1d",           "conv2d",
                              "conv3d",           "conv_transpose1d", "conv_transpose2d",
                              "conv_transpose3d", "sigmoid"};
  for (const char* f : linear_fns)
    if (nonlinearity == f) return 1;
  if (nonlinearity == "tanh") return 5.0 / 3;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") {
    const double slope = std::isnan(param) ? 0.01 : param;
    return std::sqrt(2.0 / (1 + slope * slope));
  }
  if (nonlinearity == "selu") return 3.0 / 4;
  detail::check(false, "init::calculate_gain", "unsupported nonlinearity '", nonlinearity, "'");
  return 0;
}

/// (fan_in, fan_out) of a weight of shape (out, in, k...): fan_in = in * prod(k),
/// fan_out = out * prod(k), PyTorch's _calculate_fan_in_and_fan_out. Needs dim() >= 2.
template <typename T>
std::pair<Index, Index> calculate_fan_in_and_fan_out(const Tensor<T>& tensor) {
  detail::check(tensor.dim() >= 2, "init::calculate_fan_in_and_fan_out",
                "fan in and fan out can not be computed for a tensor with fewer than 2 "
                "dimensions, got shape ",
                detail::shape_str(tensor.shape()));
  Index receptive_field = 1;
  for (Index d = 2; d < tensor.dim(); ++d) receptive_field *= tensor.size(d);
  return {tensor.size(1) * receptive_field, tensor.size(0) * receptive_field};
}
template <typename T>
Index fan_in(const Tensor<T>& tensor) {
  return calculate_fan_in_and_fan_out(tensor).first;
}
template <typename T>
Index fan_out(const Tensor<T>& tensor) {
  return calculate_fan_in_and_fan_out(tensor).second;
}

/// U(a, b).
template <typename T>
Tensor<T>& uniform_(Tensor<T>& tensor, double a = 0, double b = 1,
                    Generator& gen = default_generator()) {
  for (T& x : tensor) x = gen.uniform(T(a), T(b));
  return tensor;
}
/// N(mean, std^2).
template <typename T>
Tensor<T>& normal_(Tensor<T>& tensor, double mean = 0, double std = 1,
                   Generator& gen = default_generator()) {
  for (T& x : tensor) x = gen.normal(T(mean), T(std));
  return tensor;
}
template <typename T>
Tensor<T>& constant_(Tensor<T>& tensor, double val) {
  tensor.fill_(T(val));
  return tensor;
}
template <typename T>
Tensor<T>& zeros_(Tensor<T>& tensor) {
  return constant_(tensor, 0);
}
template <typename T>
Tensor<T>& ones_(Tensor<T>& tensor) {
  return constant_(tensor, 1);
}

/// std = gain * sqrt(2 / (fan_in + fan_out)); U(-sqrt(3) std, sqrt(3) std) (Glorot and Bengio).
template <typename T>
Tensor<T>& xavier_uniform_(Tensor<T>& tensor, double gain = 1,
                           Generator& gen = default_generator()) {
  const auto [in, out] = calculate_fan_in_and_fan_out(tensor);
  const double s = gain * std::sqrt(2.0 / static_cast<double>(in + out));
  const double a = std::sqrt(3.0) * s;
  return uniform_(tensor, -a, a, gen);
}
/// N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
template <typename T>
Tensor<T>& xavier_normal_(Tensor<T>& tensor, double gain = 1,
                          Generator& gen = default_generator()) {
  const auto [in, out] = calculate_fan_in_and_fan_out(tensor);
  return normal_(tensor, 0, gain * std::sqrt(2.0 / static_cast<double>(in + out)), gen);
}

namespace impl {
// std = gain / sqrt(fan), fan by mode ("fan_in" keeps the forward variance, "fan_out" the
// backward's), gain = calculate_gain(nonlinearity, a).
template <typename T>
double kaiming_std(const Tensor<T>& tensor, double a, const std::string& mode,
                   const std::string& nonlinearity, const char* who) {
  detail::check(mode == "fan_in" || mode == "fan_out", who,
                "mode must be 'fan_in' or 'fan_out', got '", mode, "'");
  const auto [in, out] = calculate_fan_in_and_fan_out(tensor);
  const Index fan = mode == "fan_in" ? in : out;
  return calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
}
}  // namespace impl

/// U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan) (He et al.). PyTorch's defaults:
/// a = 0, mode "fan_in", nonlinearity "leaky_relu" (gain sqrt(2 / (1 + a^2))).
template <typename T>
Tensor<T>& kaiming_uniform_(Tensor<T>& tensor, double a = 0, const std::string& mode = "fan_in",
                            const std::string& nonlinearity = "leaky_relu",
                            Generator& gen = default_generator()) {
  const double bound =
      std::sqrt(3.0) * impl::kaiming_std(tensor, a, mode, nonlinearity, "init::kaiming_uniform_");
  return uniform_(tensor, -bound, bound, gen);
}
/// N(0, std^2), std = gain / sqrt(fan); same defaults as kaiming_uniform_.
template <typename T>
Tensor<T>& kaiming_normal_(Tensor<T>& tensor, double a = 0, const std::string& mode = "fan_in",
                           const std::string& nonlinearity = "leaky_relu",
                           Generator& gen = default_generator()) {
  return normal_(tensor, 0,
                 impl::kaiming_std(tensor, a, mode, nonlinearity, "init::kaiming_normal_"), gen);
}

}  // namespace backprop::init
