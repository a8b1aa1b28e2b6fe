// SPDX-License-Identifier: MIT
// backprop: the interface every optimizer implements (torch.optim.Optimizer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "module.hpp"

namespace backprop {

/// Receives an optimizer's per-parameter state, named as in PyTorch's
/// optimizer.state_dict()["state"][i]: one tensor list per name ("exp_avg", "momentum_buffer",
/// ...), one tensor per parameter in parameters() order, or empty before the first step();
/// and counters ("step"). Checkpoints save and restore the state through this.
template <typename T>
class OptimizerStateVisitor {
 public:
  virtual ~OptimizerStateVisitor() = default;
  virtual void tensors(std::string_view name, std::vector<Tensor<T>>& per_parameter) = 0;
  virtual void counter(std::string_view name, std::int64_t& value) = 0;
};

/// The base of SGD, Adam and AdamW, as torch.optim.Optimizer with one parameter group:
/// step() updates every parameter from its gradient, zero_grad() clears the gradients, lr()
/// and set_lr() are param_groups[0]["lr"] (what the schedulers drive), and visit_state()
/// lists the state a checkpoint must keep for an exact resume.
/// The optimizer keeps pointers to the model's tensors: keep the model where it is.
/// Example: Optimizer<float>& opt = adam; opt.zero_grad(); ...; opt.step();
template <typename T>
class Optimizer {
 public:
  using Scalar = T;
  virtual ~Optimizer() = default;

  /// One update of every parameter from its current gradient.
  virtual void step() = 0;
  /// PyTorch's class name ("SGD", "Adam", "AdamW"), stored in checkpoints.
  virtual const char* name() const = 0;
  /// Lists the per-parameter state (see OptimizerStateVisitor).
  virtual void visit_state(OptimizerStateVisitor<T>& visitor) = 0;
  /// Hyper-parameters other than lr, as (PyTorch name, value), recorded in checkpoints.
  virtual std::vector<std::pair<const char*, double>> hyperparameters() const = 0;

  /// Zeroes the gradients of the parameters this optimizer updates, or sets them to none
  /// (see Module::zero_grad; PyTorch's zero_grad(set_to_none)).
  void zero_grad(bool set_to_none = false) {
    for (Parameter<T>& p : parameters_) clear_grad(*p.grad, set_to_none);
  }

  double lr() const { return lr_; }
  void set_lr(double lr) {
    if (!(lr >= 0)) {
      const std::string where = std::string(name()) + "::set_lr";
      detail::check(false, where.c_str(), "lr must be >= 0, got ", lr);
    }
    lr_ = lr;
  }

  const std::vector<Parameter<T>>& parameters() const { return parameters_; }

 protected:
  Optimizer(std::vector<Parameter<T>> parameters, double lr, const char* who)
      : parameters_(std::move(parameters)), lr_(lr) {
    detail::check(lr >= 0, who, "lr must be >= 0, got ", lr);
    for (const Parameter<T>& p : parameters_)
      detail::check(p.value && p.grad &&
                        (p.value->shape() == p.grad->shape() || grad_is_none(*p.grad, *p.value)),
                    who, "parameter '", p.name, "' has no gradient of its shape");
  }

  /// What step() does first: false when every gradient is none (zero_grad(true) and no
  /// backward() since), and step() then changes nothing, as PyTorch's. A gradient that is
  /// none beside others that are not is an error: PyTorch would skip that parameter alone,
  /// but our optimizers keep their state (Adam's step count) for all parameters at once.
  bool has_gradients() const {
    std::size_t none = 0;
    for (const Parameter<T>& p : parameters_) none += grad_is_none(*p.grad, *p.value);
    if (none == 0) return true;
    if (none == parameters_.size()) return false;
    const std::string where = std::string(name()) + "::step";
    for (const Parameter<T>& p : parameters_)
      detail::check(!grad_is_none(*p.grad, *p.value), where.c_str(), "parameter '", p.name,
                    "' has no gradient (zero_grad(true) and no backward() through it since)",
                    " while others have one");
    return true;
  }
  Optimizer(const Optimizer&) = default;
  Optimizer(Optimizer&&) noexcept = default;
  Optimizer& operator=(const Optimizer&) = default;
  Optimizer& operator=(Optimizer&&) noexcept = default;

  std::vector<Parameter<T>> parameters_;
  double lr_;
};

}  // namespace backprop
