// SPDX-License-Identifier: MIT
// backprop: learning-rate schedules for any optimizer: StepLR, ExponentialLR,
// CosineAnnealingLR, on one base, LRScheduler.
#pragma once

#include <cmath>
#include <string>

#include "detail/error.hpp"
#include "tensor.hpp"

namespace backprop {

/// What every schedule shares: the optimizer it drives, base_lr (the optimizer's lr when the
/// schedule is made, PyTorch's initial_lr) and the epoch it is at. A schedule is its lr_at().
/// Epochs: set_epoch(e) sets the lr of epoch e (from 0), called at the start of that epoch;
/// step() moves to the next epoch, as PyTorch's scheduler.step() at the end of one. After e
/// calls of step() the lr is the one PyTorch's scheduler gives after e calls of
/// scheduler.step() (last_epoch = e). Opt: any type with lr() and set_lr(double): SGD<T>,
/// Adam<T>, AdamW<T>, Optimizer<T>.
template <typename Opt>
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;

  /// The lr of epoch `epoch` (from 0).
  virtual double lr_at(Index epoch) const = 0;

  /// Sets the optimizer's lr for this epoch and returns it; call at the start of each epoch.
  double set_epoch(Index epoch) {
    detail::check(epoch >= 0, set_epoch_where_.c_str(), "epoch must be >= 0, got ", epoch);
    last_epoch_ = epoch;
    optimizer_.set_lr(lr_at(epoch));
    return optimizer_.lr();
  }
  /// As scheduler.step() at the end of an epoch: sets the next epoch's lr.
  double step() { return set_epoch(last_epoch_ + 1); }
  Index last_epoch() const { return last_epoch_; }
  double base_lr() const { return base_lr_; }

 protected:
  LRScheduler(Opt& optimizer, const char* name)
      : optimizer_(optimizer),
        base_lr_(optimizer.lr()),
        set_epoch_where_(std::string(name) + "::set_epoch") {}

 private:
  Opt& optimizer_;
  double base_lr_;
  std::string set_epoch_where_;  // "StepLR::set_epoch", built once: set_epoch never allocates
  Index last_epoch_ = 0;
};

/// Step decay of an optimizer's learning rate: in epoch e (from 0) the lr is
///   base_lr * gamma^k,  k = floor(e / step_size) + (decay_at_start ? 1 : 0),
/// computed by k successive multiplications, as PyTorch's StepLR and the reference programs
/// do, so the float values match theirs. decay_at_start = true also decays at the start of
/// epoch 0, as the "if epoch % 5 == 0: lr *= 0.1" loop of the MNIST example's reference 1
/// (examples/mnist). step_size = 0 keeps lr constant.
/// Example: StepLR<SGD<float>> schedule(opt, 5, 0.1, true); schedule.set_epoch(epoch);
template <typename Opt>
class StepLR : public LRScheduler<Opt> {
 public:
  StepLR(Opt& optimizer, Index step_size, double gamma = 0.1, bool decay_at_start = false)
      : LRScheduler<Opt>(optimizer, "StepLR"),
        step_size_(step_size),
        gamma_(gamma),
        decay_at_start_(decay_at_start) {
    detail::check(step_size >= 0, "StepLR", "step_size must be >= 0, got ", step_size);
    detail::check(gamma > 0, "StepLR", "gamma must be > 0, got ", gamma);
  }

  double lr_at(Index epoch) const override {
    if (step_size_ == 0) return this->base_lr();
    const Index k = epoch / step_size_ + (decay_at_start_ ? 1 : 0);
    double lr = this->base_lr();
    for (Index i = 0; i < k; ++i) lr *= gamma_;
    return lr;
  }

 private:
  Index step_size_;
  double gamma_;
  bool decay_at_start_;
};

/// lr_e = base_lr * gamma^e, as torch.optim.lr_scheduler.ExponentialLR
/// (https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ExponentialLR.html).
/// gamma^e is e successive multiplications, as PyTorch's step() computes it (lr *= gamma),
/// so the values are the same bit for bit.
/// Example: ExponentialLR<Adam<float>> schedule(opt, 0.95); ... schedule.step();
template <typename Opt>
class ExponentialLR : public LRScheduler<Opt> {
 public:
  ExponentialLR(Opt& optimizer, double gamma)
      : LRScheduler<Opt>(optimizer, "ExponentialLR"), gamma_(gamma) {
    detail::check(gamma > 0, "ExponentialLR", "gamma must be > 0, got ", gamma);
  }

  double lr_at(Index epoch) const override {
    double lr = this->base_lr();
    for (Index i = 0; i < epoch; ++i) lr *= gamma_;
    return lr;
  }

 private:
  double gamma_;
};

/// lr_e = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2, PyTorch's closed
/// form for torch.optim.lr_scheduler.CosineAnnealingLR
/// (https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.CosineAnnealingLR.html).
/// PyTorch's step() computes the same curve recursively from the previous lr; the two agree
/// to rounding (a few ulps; tests/test_lr_scheduler.cpp measures it). Past T_max the cosine
/// goes on (back up to base_lr at 2 T_max), as in PyTorch; there is no warm restart.
/// Example: CosineAnnealingLR<SGD<float>> schedule(opt, /*T_max=*/20); ... schedule.step();
template <typename Opt>
class CosineAnnealingLR : public LRScheduler<Opt> {
 public:
  CosineAnnealingLR(Opt& optimizer, Index T_max, double eta_min = 0)
      : LRScheduler<Opt>(optimizer, "CosineAnnealingLR"), T_max_(T_max), eta_min_(eta_min) {
    detail::check(T_max > 0, "CosineAnnealingLR", "T_max must be > 0, got ", T_max);
  }

  double lr_at(Index epoch) const override {
    constexpr double pi = 3.14159265358979323846;
    // Python's operator order: eta_min + (base - eta_min) * (1 + cos(e * pi / T_max)) / 2
    return eta_min_ +
           (this->base_lr() - eta_min_) *
               (1 + std::cos(static_cast<double>(epoch) * pi / static_cast<double>(T_max_))) / 2;
  }

 private:
  Index T_max_;
  double eta_min_;
};

}  // namespace backprop
