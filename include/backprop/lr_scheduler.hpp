// SPDX-License-Identifier: MIT
// backprop: learning-rate schedules for any optimizer: ExponentialLR, CosineAnnealingLR.
#pragma once

#include <cmath>

#include "detail/error.hpp"
#include "tensor.hpp"

namespace backprop {

// Epoch semantics of every schedule here (and of StepLR in sgd.hpp): set_epoch(e) sets the
// lr of epoch e (from 0), called at the start of that epoch; step() moves to the next
// epoch, as PyTorch's scheduler.step() at the end of one. After e calls of step() the lr is
// the one PyTorch's scheduler gives after e calls of scheduler.step() (last_epoch = e).
// base_lr is the optimizer's lr when the schedule is made (PyTorch's initial_lr). Any type
// with lr() and set_lr(double) works: SGD<T>, Adam<T>, AdamW<T>, Optimizer<T>.

/// lr_e = base_lr * gamma^e, as torch.optim.lr_scheduler.ExponentialLR
/// (https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ExponentialLR.html).
/// gamma^e is e successive multiplications, as PyTorch's step() computes it (lr *= gamma),
/// so the values are the same bit for bit.
/// Example: ExponentialLR<Adam<float>> schedule(opt, 0.95); ... schedule.step();
template <typename Opt>
class ExponentialLR {
 public:
  ExponentialLR(Opt& optimizer, double gamma)
      : optimizer_(optimizer), base_lr_(optimizer.lr()), gamma_(gamma) {
    detail::check(gamma > 0, "ExponentialLR", "gamma must be > 0, got ", gamma);
  }

  double lr_at(Index epoch) const {
    double lr = base_lr_;
    for (Index i = 0; i < epoch; ++i) lr *= gamma_;
    return lr;
  }
  /// Sets the optimizer's lr for epoch `epoch` and returns it.
  double set_epoch(Index epoch) {
    detail::check(epoch >= 0, "ExponentialLR::set_epoch", "epoch must be >= 0, got ", epoch);
    last_epoch_ = epoch;
    optimizer_.set_lr(lr_at(epoch));
    return optimizer_.lr();
  }
  /// As scheduler.step(): the next epoch's lr.
  double step() { return set_epoch(last_epoch_ + 1); }
  Index last_epoch() const { return last_epoch_; }

 private:
  Opt& optimizer_;
  double base_lr_, gamma_;
  Index last_epoch_ = 0;
};

/// lr_e = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2, PyTorch's closed
/// form for torch.optim.lr_scheduler.CosineAnnealingLR
/// (https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.CosineAnnealingLR.html).
/// PyTorch's step() computes the same curve recursively from the previous lr; the two agree
/// to rounding (a few ulps; tests/test_lr_scheduler.cpp measures it). Past T_max the cosine
/// goes on (back up to base_lr at 2 T_max), as in PyTorch; there is no warm restart.
/// Example: CosineAnnealingLR<SGD<float>> schedule(opt, /*T_max=*/20); ... schedule.step();
template <typename Opt>
class CosineAnnealingLR {
 public:
  CosineAnnealingLR(Opt& optimizer, Index T_max, double eta_min = 0)
      : optimizer_(optimizer), base_lr_(optimizer.lr()), T_max_(T_max), eta_min_(eta_min) {
    detail::check(T_max > 0, "CosineAnnealingLR", "T_max must be > 0, got ", T_max);
  }

  double lr_at(Index epoch) const {
    constexpr double pi = 3.14159265358979323846;
    // Python's operator order: eta_min + (base - eta_min) * (1 + cos(e * pi / T_max)) / 2
    return eta_min_ +
           (base_lr_ - eta_min_) *
               (1 + std::cos(static_cast<double>(epoch) * pi / static_cast<double>(T_max_))) / 2;
  }
  /// Sets the optimizer's lr for epoch `epoch` and returns it.
  double set_epoch(Index epoch) {
    detail::check(epoch >= 0, "CosineAnnealingLR::set_epoch", "epoch must be >= 0, got ", epoch);
    last_epoch_ = epoch;
    optimizer_.set_lr(lr_at(epoch));
    return optimizer_.lr();
  }
  /// As scheduler.step(): the next epoch's lr.
  double step() { return set_epoch(last_epoch_ + 1); }
  Index last_epoch() const { return last_epoch_; }

 private:
  Opt& optimizer_;
  double base_lr_;
  Index T_max_;
  double eta_min_;
  Index last_epoch_ = 0;
};

}  // namespace backprop
