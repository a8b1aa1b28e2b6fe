// SPDX-License-Identifier: MIT
// backprop: the Module interface (forward, backward, parameters, buffers, train/eval).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tensor.hpp"

namespace backprop {

template <typename T>
class Module;

/// Whether a gradient is none (PyTorch's p.grad is None): zero_grad(true) leaves it empty
/// while its parameter is not, until the next backward() writes it.
template <typename T>
bool grad_is_none(const Tensor<T>& grad, const Tensor<T>& value) {
  return grad.numel() == 0 && value.numel() != 0;
}

/// Clears a gradient: to zero, or to none (empty, its storage kept), as zero_grad(set_to_none).
template <typename T>
void clear_grad(Tensor<T>& grad, bool set_to_none) {
  if (set_to_none)
    grad.resize({0});
  else
    grad.zero_();
}

/// Called by backward() before it puts a parameter's gradient in grad: true if grad holds a
/// gradient to add to; false if grad was none, which it then resizes to the parameter's
/// shape (contents unspecified) for the caller to overwrite. Overwriting a none gradient
/// skips both the memset of zero_grad() and the read of the zeros.
/// Example: if (accumulates_into(grad_weight, weight)) dW += g; else dW = g;
template <typename T>
bool accumulates_into(Tensor<T>& grad, const Tensor<T>& value) {
  if (!grad_is_none(grad, value)) return true;
  grad.resize(value.shape());
  return false;
}

/// grad += g, or grad = g when grad is none: backward()'s update of a parameter gradient
/// from an Eigen expression g with the parameter's numel() elements.
template <typename T, typename Derived>
void accumulate_grad(Tensor<T>& grad, const Tensor<T>& value, const Eigen::MatrixBase<Derived>& g) {
  if (accumulates_into(grad, value))
    grad.vector() += g;
  else
    grad.vector() = g;
}

namespace detail {
// This thread's grad mode: one flag per thread, as PyTorch's.
inline bool& grad_mode() {
  thread_local bool enabled = true;
  return enabled;
}
}  // namespace detail

/// Whether forward passes on this thread save what backward() needs, as
/// torch.is_grad_enabled(): true unless a NoGradGuard is alive on this thread.
inline bool is_grad_enabled() { return detail::grad_mode(); }

/// While it lives, forward passes on this thread skip the copies that only backward() reads,
/// as torch.no_grad() (libtorch's torch::NoGradGuard): Linear reads its input in place
/// instead of saving a copy of it, BatchNorm1d and LayerNorm keep no x_hat, GELU and LeakyReLU
/// no copy of x. The outputs keep the same bits. That saves the copies' memory; Linear's made
/// the reference models' inference 1.01-1.05x faster, medians of five rounds (AMD EPYC Zen 5,
/// docs/benchmarks.md). A backward() through a module whose last forward ran under the guard
/// is an error, as in PyTorch. Guards nest; each restores the mode it found.
/// Example: { NoGradGuard no_grad; const Tensor<float>& logits = model.forward(x); }
class NoGradGuard {
 public:
  NoGradGuard() : previous_(detail::grad_mode()) { detail::grad_mode() = false; }
  ~NoGradGuard() { detail::grad_mode() = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// A trainable tensor and its gradient, named as in PyTorch's state_dict ("layer1.0.weight").
template <typename T>
struct Parameter {
  std::string name;
  Tensor<T>* value;
  Tensor<T>* grad;
};

/// One state_dict entry: a parameter or a buffer. Buffers are T (running_mean) or int64
/// (num_batches_tracked), as in PyTorch.
template <typename T>
struct StateEntry {
  std::string name;
  std::variant<Tensor<T>*, Tensor<std::int64_t>*> tensor;
  Tensor<T>* grad;  // the parameter's gradient; nullptr for a buffer
};

/// Receives what a module owns, in PyTorch's order: its parameters, its buffers, then its
/// children. Names are relative; a child's own names follow "<child name>.".
template <typename T>
class StateVisitor {
 public:
  virtual ~StateVisitor() = default;
  virtual void parameter(std::string_view /*name*/, Tensor<T>& /*value*/, Tensor<T>& /*grad*/) {}
  virtual void buffer(std::string_view /*name*/, Tensor<T>& /*value*/) {}
  virtual void buffer(std::string_view /*name*/, Tensor<std::int64_t>& /*value*/) {}
  virtual void module(std::string_view /*name*/, Module<T>& child) { child.visit(*this); }
};

/// The base of every layer and model, as torch.nn.Module.
///   forward(x) returns y and saves what backward needs;
///   backward(dy) takes dL/dy, accumulates dL/dparam into grad_<param> with += (or writes
///   it when zero_grad(true) left it none: accumulate_grad), returns dL/dx.
/// Both return a reference to a buffer the module owns, valid until its next call; copy it
/// if you need it longer. A module with children lists them in visit(), which is all that
/// parameters(), state_dict(), zero_grad() and train() need.
/// Example: y = model.forward(x); loss.forward(y, labels); model.backward(loss.backward());
template <typename T>
class Module {
 public:
  using Scalar = T;
  virtual ~Module() = default;

  virtual const Tensor<T>& forward(const Tensor<T>& input) = 0;
  virtual const Tensor<T>& backward(const Tensor<T>& grad_output) = 0;

  /// Lists parameters, buffers and child modules (see StateVisitor). Leaf modules without
  /// state keep this default.
  virtual void visit(StateVisitor<T>& /*visitor*/) {}

  const Tensor<T>& operator()(const Tensor<T>& input) { return forward(input); }

  /// Whether backward() must return dL/dx. Off for a model's first layer, whose input is
  /// data (PyTorch: the input does not require grad), so that Linear skips the product
  /// dy * W that nothing reads; backward() then returns an empty tensor. Containers pass it
  /// to their first child. Example: model.set_input_requires_grad(false);
  virtual void set_input_requires_grad(bool on) { input_requires_grad_ = on; }
  bool input_requires_grad() const { return input_requires_grad_; }

  /// Training mode (batch statistics in BatchNorm) or evaluation mode, for this module and
  /// all its children.
  void train(bool on = true) {
    training_ = on;
    struct Train : StateVisitor<T> {
      bool on;
      explicit Train(bool o) : on(o) {}
      void module(std::string_view, Module<T>& child) override { child.train(on); }
    } visitor(on);
    visit(visitor);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Sets every parameter gradient to zero, or with set_to_none to none (PyTorch's
  /// zero_grad(set_to_none); ours defaults to false, as PyTorch 1.x, while PyTorch 2.0
  /// changed its default to true): an empty tensor that keeps its storage, which the next
  /// backward() overwrites instead of adding to. That saves a pass over the gradients and
  /// gives the same values (0 + g is g). Optimizers do nothing while every gradient is none
  /// (Optimizer::has_gradients).
  void zero_grad(bool set_to_none = false) {
    struct Zero : StateVisitor<T> {
      bool none;
      explicit Zero(bool n) : none(n) {}
      void parameter(std::string_view, Tensor<T>&, Tensor<T>& grad) override {
        clear_grad(grad, none);
      }
    } visitor(set_to_none);
    visit(visitor);
  }

  /// Every parameter with its gradient, named and ordered as model.named_parameters().
  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> out;
    for (const StateEntry<T>& e : state_dict())
      if (e.grad) out.push_back({e.name, std::get<Tensor<T>*>(e.tensor), e.grad});
    return out;
  }

  /// Parameters and buffers, named and ordered as model.state_dict().
  std::vector<StateEntry<T>> state_dict() {
    struct Collect : StateVisitor<T> {
      std::vector<StateEntry<T>> entries;
      std::string prefix;
      void parameter(std::string_view name, Tensor<T>& value, Tensor<T>& grad) override {
        entries.push_back({prefix + std::string(name), &value, &grad});
      }
      void buffer(std::string_view name, Tensor<T>& value) override {
        entries.push_back({prefix + std::string(name), &value, nullptr});
      }
      void buffer(std::string_view name, Tensor<std::int64_t>& value) override {
        entries.push_back({prefix + std::string(name), &value, nullptr});
      }
      void module(std::string_view name, Module<T>& child) override {
        const std::size_t saved = prefix.size();
        prefix += std::string(name) + ".";
        child.visit(*this);
        prefix.resize(saved);
      }
    } collect;
    visit(collect);
    return std::move(collect.entries);
  }

 protected:
  Module() = default;
  Module(const Module&) = default;
  Module(Module&&) noexcept = default;
  Module& operator=(const Module&) = default;
  Module& operator=(Module&&) noexcept = default;

 private:
  bool training_ = true;
  bool input_requires_grad_ = true;
};

}  // namespace backprop
