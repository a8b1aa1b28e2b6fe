// SPDX-License-Identifier: MIT
// backprop: Sequential, a chain of modules run in order (and backward in reverse).
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "module.hpp"

namespace backprop {

/// Modules applied in order, as torch.nn.Sequential; children are named "0", "1", ...
/// so state_dict keys match PyTorch's. Sequentials nest, and sit inside user modules.
/// Example: Sequential<float> net(Linear<float>(784, 300), ReLU<float>(), Linear<float>(300, 10));
template <typename T>
class Sequential : public Module<T> {
 public:
  Sequential() = default;

  template <typename... Modules, typename = std::enable_if_t<
                                     (std::is_base_of_v<Module<T>, std::decay_t<Modules>> && ...)>>
  explicit Sequential(Modules&&... modules) {
    (push_back(std::forward<Modules>(modules)), ...);
  }

  /// Appends a module (moved or copied in) and returns a reference to the stored one.
  template <typename M>
  std::decay_t<M>& push_back(M&& module) {
    static_assert(std::is_base_of_v<Module<T>, std::decay_t<M>>,
                  "Sequential<T>::push_back takes a Module<T>");
    auto owned = std::make_unique<std::decay_t<M>>(std::forward<M>(module));
    std::decay_t<M>& ref = *owned;
    ref.train(this->is_training());
    names_.push_back(std::to_string(modules_.size()));
    modules_.push_back(std::move(owned));
    return ref;
  }

  Index size() const { return static_cast<Index>(modules_.size()); }
  Module<T>& operator[](Index i) { return *modules_.at(static_cast<std::size_t>(i)); }

  // x -> m_k(...m_1(m_0(x))). Each module keeps its own output, which feeds the next.
  const Tensor<T>& forward(const Tensor<T>& x) override {
    const Tensor<T>* y = &x;
    for (auto& m : modules_) y = &m->forward(*y);
    return *y;
  }

  // Chain rule: dL/dx = dL/dy_0 with dL/dy_{i-1} = m_i.backward(dL/dy_i), last to first.
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>* g = &grad_output;
    for (auto it = modules_.rbegin(); it != modules_.rend(); ++it) g = &(*it)->backward(*g);
    return *g;
  }

  // Only the first module's input is this container's input.
  void set_input_requires_grad(bool on) override {
    Module<T>::set_input_requires_grad(on);
    if (!modules_.empty()) modules_.front()->set_input_requires_grad(on);
  }

  void visit(StateVisitor<T>& v) override {
    for (std::size_t i = 0; i < modules_.size(); ++i) v.module(names_[i], *modules_[i]);
  }

 private:
  std::vector<std::unique_ptr<Module<T>>> modules_;
  std::vector<std::string> names_;  // kept so that visiting never allocates
};

}  // namespace backprop
