// SPDX-License-Identifier: MIT
// backprop: finite-difference gradient checks for any module and for the loss.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "loss.hpp"
#include "module.hpp"

namespace backprop {

/// Tolerances as torch.autograd.gradcheck's defaults, which are meant for double.
struct GradcheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-5;  // pass when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  std::uint64_t seed = 0;  // for the upstream gradient R
};

struct GradcheckResult {
  bool ok = true;
  Index checked = 0;         // number of gradient elements compared
  double max_abs_error = 0;  // over all of them
  double max_rel_error = 0;  // |a - n| / max(|n|, 1e-12)
  std::string failures;      // one line per mismatch (the first 10)

  explicit operator bool() const { return ok; }
};

namespace detail {

// Compares analytic with the central difference (f(v + eps) - f(v - eps)) / (2 eps) for
// every element of v, restoring each element afterwards. An analytic gradient of the wrong
// shape is a failure, reported without reading it.
inline void compare_gradient(const std::string& name, const Tensor<double>& analytic,
                             Tensor<double>& v, const std::function<double()>& f,
                             const GradcheckOptions& opt, GradcheckResult& result) {
  if (analytic.shape() != v.shape()) {
    result.failures +=
        concat(name, ": the analytic gradient has shape ", shape_str(analytic.shape()),
               ", expected ", shape_str(v.shape()), "\n");
    result.ok = false;
    return;
  }
  for (Index i = 0; i < v.numel(); ++i) {
    const double saved = v[i];
    v[i] = saved + opt.eps;
    const double plus = f();
    v[i] = saved - opt.eps;
    const double minus = f();
    v[i] = saved;
    const double numeric = (plus - minus) / (2 * opt.eps);
    const double err = std::abs(analytic[i] - numeric);
    result.checked += 1;
    result.max_abs_error = std::max(result.max_abs_error, err);
    result.max_rel_error = std::max(result.max_rel_error, err / std::max(std::abs(numeric), 1e-12));
    if (err > opt.atol + opt.rtol * std::abs(numeric)) {
      if (result.ok || std::count(result.failures.begin(), result.failures.end(), '\n') < 10)
        result.failures += concat(name, "[", i, "]: analytic ", analytic[i], ", numeric ", numeric,
                                  ", |diff| ", err, "\n");
      result.ok = false;
    }
  }
}

}  // namespace detail

/// Checks module.backward against finite differences of L = sum(forward(x) * R), R a fixed
/// random upstream gradient: dL/dx and every parameter gradient, element by element.
/// dL/dx is skipped when the module was told set_input_requires_grad(false) (its backward
/// then returns an empty tensor). Buffers (BatchNorm running statistics) and parameter
/// gradients are restored afterwards.
/// Example: REQUIRE(gradcheck(layer, x));
inline GradcheckResult gradcheck(Module<double>& module, const Tensor<double>& input,
                                 const GradcheckOptions& opt = {}) {
  // Snapshot buffers: every forward in training mode moves the running statistics.
  std::vector<StateEntry<double>> state = module.state_dict();
  std::vector<std::variant<Tensor<double>, Tensor<std::int64_t>>> saved;
  for (const StateEntry<double>& e : state)
    std::visit([&](auto* t) { saved.emplace_back(*t); }, e.tensor);

  Tensor<double> x = input;
  Generator gen(opt.seed);
  const Tensor<double> r = Tensor<double>::randn(module.forward(x).shape(), gen);
  const auto loss = [&]() { return module.forward(x).vector().dot(r.vector()); };

  // Analytic gradients, from a fresh zero (also for a gradient that was none: a parameter
  // backward does not reach then reads as zero, not as an empty tensor).
  std::vector<Parameter<double>> params = module.parameters();
  std::vector<Tensor<double>> grads_before;
  for (Parameter<double>& p : params) {
    grads_before.push_back(*p.grad);
    p.grad->resize(p.value->shape());
    p.grad->zero_();
  }
  module.forward(x);
  const Tensor<double> grad_input = module.backward(r);
  std::vector<Tensor<double>> grad_params;
  for (Parameter<double>& p : params) grad_params.push_back(*p.grad);

  GradcheckResult result;
  if (module.input_requires_grad())
    detail::compare_gradient("input", grad_input, x, loss, opt, result);
  for (std::size_t i = 0; i < params.size(); ++i)
    detail::compare_gradient(params[i].name, grad_params[i], *params[i].value, loss, opt, result);

  for (std::size_t i = 0; i < params.size(); ++i) *params[i].grad = grads_before[i];
  for (std::size_t i = 0; i < state.size(); ++i)
    std::visit([&](auto* t) { *t = std::get<std::decay_t<decltype(*t)>>(saved[i]); },
               state[i].tensor);
  return result;
}

/// Checks a loss's backward against finite differences of L = sum(forward_tensor(x, t) * R),
/// R a fixed random grad_output of the loss's shape (a scalar for Mean/Sum, so the chain
/// rule through grad_output is checked too): every element of dL/dx. Any Loss: targets are
/// integer labels (CrossEntropyLoss) or tensors like the input (see loss.hpp).
/// Example: REQUIRE(gradcheck(criterion, logits, labels));
template <typename Target>
GradcheckResult gradcheck(Loss<double, Target>& criterion, const Tensor<double>& input,
                          const Target& target, const GradcheckOptions& opt = {}) {
  Tensor<double> x = input;
  Generator gen(opt.seed);
  const Tensor<double> r = Tensor<double>::randn(criterion.forward_tensor(x, target).shape(), gen);
  const auto loss = [&]() { return criterion.forward_tensor(x, target).vector().dot(r.vector()); };
  criterion.forward_tensor(x, target);
  const Tensor<double> grad_input = criterion.backward(r);
  GradcheckResult result;
  detail::compare_gradient("input", grad_input, x, loss, opt, result);
  return result;
}

}  // namespace backprop
