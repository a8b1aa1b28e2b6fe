// SPDX-License-Identifier: MIT
// backprop: SGD with momentum, dampening, weight decay and Nesterov; StepLR schedule.
#pragma once

#include <utility>
#include <vector>

#include "detail/thread_pool.hpp"
#include "module.hpp"
#include "optimizer.hpp"
// StepLR, which reference 1 uses with SGD, lives with the other schedules; included here so
// that code written when it lived in this header still compiles.
#include "lr_scheduler.hpp"

namespace backprop {

/// Stochastic gradient descent with PyTorch's exact update rule, as torch.optim.SGD
/// (https://pytorch.org/docs/stable/generated/torch.optim.SGD.html). For each parameter p
/// with gradient g:
///   g = g + weight_decay * p
///   if momentum != 0:
///     buf = g                                          on the first step (a clone of g)
///     buf = momentum * buf + (1 - dampening) * g       afterwards
///     g   = nesterov ? g + momentum * buf : buf
///   p = p - lr * g
/// The optimizer keeps pointers to the model's tensors: keep the model where it is.
/// Derivation: docs/math/sgd.md   Proof: tests/test_sgd.cpp
/// Example: SGD<float> optimizer(model.parameters(), /*lr=*/0.01, /*momentum=*/0.5);
template <typename T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Parameter<T>> parameters, double lr, double momentum = 0, double dampening = 0,
      double weight_decay = 0, bool nesterov = false)
      : Optimizer<T>(std::move(parameters), lr, "SGD"),
        momentum_(momentum),
        dampening_(dampening),
        weight_decay_(weight_decay),
        nesterov_(nesterov) {
    detail::check(momentum >= 0, "SGD", "momentum must be >= 0, got ", momentum);
    detail::check(weight_decay >= 0, "SGD", "weight_decay must be >= 0, got ", weight_decay);
    detail::check(!nesterov || (momentum > 0 && dampening == 0), "SGD",
                  "nesterov requires momentum > 0 and dampening = 0, got momentum = ", momentum,
                  ", dampening = ", dampening);
  }

  /// One update of every parameter from its current gradient. A large parameter is cut into
  /// one contiguous part per thread (set_num_threads; one part while the pool runs alone);
  /// each element is updated alone, so the result does not depend on the cut.
  void step() override {
    if (!this->has_gradients()) return;
    std::vector<Parameter<T>>& params = this->parameters_;
    const bool first = momentum_buffer_.empty();
    if (momentum_ != 0 && first) momentum_buffer_.resize(params.size());
    const Rule rule{T(this->lr_),   T(momentum_), T(1 - dampening_), T(weight_decay_),
                    momentum_ != 0, first,        nesterov_};
    for (std::size_t i = 0; i < params.size(); ++i) {
      T* p = params[i].value->data();
      const T* g = std::as_const(*params[i].grad).data();
      T* buf = nullptr;
      if (rule.momentum_on) {
        if (first) momentum_buffer_[i].resize(params[i].value->shape());
        buf = momentum_buffer_[i].data();
      }
      auto part = [&](std::int64_t begin, std::int64_t end) {
        update(rule, p + begin, g + begin, buf ? buf + begin : nullptr, end - begin);
      };
      const Index n = params[i].value->numel();
      if (n >= kParallelMinElements)
        detail::run_parts(n, 64, part);
      else
        part(0, n);
    }
  }

  const char* name() const override { return "SGD"; }
  /// PyTorch's state: "momentum_buffer" (none when momentum = 0).
  void visit_state(OptimizerStateVisitor<T>& visitor) override {
    if (momentum_ != 0) visitor.tensors("momentum_buffer", momentum_buffer_);
  }
  std::vector<std::pair<const char*, double>> hyperparameters() const override {
    return {{"momentum", momentum_},
            {"dampening", dampening_},
            {"weight_decay", weight_decay_},
            {"nesterov", nesterov_ ? 1.0 : 0.0}};
  }
  double momentum() const { return momentum_; }
  /// One buffer per parameter, in parameters() order; empty until the first step() with
  /// momentum (PyTorch creates them then). Checkpoints save and restore these.
  std::vector<Tensor<T>>& momentum_buffer() { return momentum_buffer_; }

 private:
  struct Rule {
    T lr, momentum, keep, wd;  // keep = 1 - dampening
    bool momentum_on, first, nesterov;
  };
  // Parameters smaller than this (biases, small layers) are updated by the caller alone.
  static constexpr Index kParallelMinElements = 16384;

  // One pass over n elements: each is read and written once (Eigen expressions took two
  // passes and read p again for the weight decay even when it is 0). The rule comes by value,
  // so the loop reads nothing through a reference that could alias the data it writes.
  static void update(Rule r, T* p, const T* g, T* buf, std::int64_t n) {
    for (std::int64_t j = 0; j < n; ++j) {
      const T d = r.wd != 0 ? g[j] + r.wd * p[j] : g[j];  // d_p
      if (!r.momentum_on) {
        p[j] -= r.lr * d;
        continue;
      }
      const T b = r.first ? d : r.momentum * buf[j] + r.keep * d;  // momentum buffer
      buf[j] = b;
      p[j] -= r.lr * (r.nesterov ? d + r.momentum * b : b);
    }
  }

  double momentum_, dampening_, weight_decay_;
  bool nesterov_;
  std::vector<Tensor<T>> momentum_buffer_;
};

}  // namespace backprop
