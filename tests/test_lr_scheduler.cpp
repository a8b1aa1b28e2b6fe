// SPDX-License-Identifier: MIT
// ExponentialLR and CosineAnnealingLR (and StepLR through the same interface): closed forms
// by hand, PyTorch's lr sequences (tests/fixtures/parity_optim.hpp), any optimizer, misuse.
#include <backprop/adam.hpp>
#include <backprop/lr_scheduler.hpp>
#include <backprop/sgd.hpp>
#include <catch2/catch.hpp>
#include <cmath>

#include "fixtures/parity_optim.hpp"
#include "test_helpers.hpp"

using namespace backprop;
using backprop_test::Scalar;
namespace fx = backprop_fixtures;

TEST_CASE("ExponentialLR: lr = base * gamma^epoch, step() moves one epoch", "[lr_scheduler]") {
  Scalar s;
  Adam<double> opt(s.params(), 0.5);
  ExponentialLR<Adam<double>> schedule(opt, 0.5);
  CHECK(schedule.last_epoch() == 0);
  CHECK(opt.lr() == 0.5);  // epoch 0: the base lr, untouched
  CHECK(schedule.step() == 0.25);
  CHECK(schedule.step() == 0.125);
  CHECK(opt.lr() == 0.125);
  CHECK(schedule.last_epoch() == 2);
  CHECK(schedule.set_epoch(5) == 0.5 / 32);  // resume at any epoch
  CHECK(schedule.lr_at(0) == 0.5);
}

TEST_CASE("CosineAnnealingLR: the closed form at its landmarks", "[lr_scheduler]") {
  Scalar s;
  SGD<double> opt(s.params(), 0.1);
  CosineAnnealingLR<SGD<double>> schedule(opt, /*T_max=*/10, /*eta_min=*/0.01);
  CHECK(schedule.lr_at(0) == 0.1);
  CHECK(schedule.lr_at(5) == Approx(0.055).epsilon(1e-15));  // half way: the mean
  CHECK(schedule.lr_at(10) == Approx(0.01).epsilon(1e-15));  // T_max: eta_min
  CHECK(schedule.lr_at(20) == Approx(0.1).epsilon(1e-15));   // and back up, as PyTorch
  CHECK(schedule.lr_at(3) == Approx(schedule.lr_at(17)).epsilon(1e-14));
  for (int e = 0; e < 4; ++e) schedule.step();
  CHECK(opt.lr() == schedule.lr_at(4));
}

// Tolerance: ExponentialLR and StepLR multiply exactly as PyTorch's step() does, so they must
// be equal bit for bit. PyTorch's CosineAnnealingLR.step() recurses from the previous lr
// (lr_e = ratio of cosines * (lr_{e-1} - eta_min) + eta_min) where we use the closed form;
// each recursion step rounds a few times, so over 40 epochs the two drift apart by a few
// dozen ulps at most: rel 1e-13 (+ atol 1e-17 for PyTorch's exact 0 at T_max).
// Measured (clang 14, -O2): max rel difference 9.2e-15.
TEST_CASE("Parity: the lr of 40 epochs of each scheduler against PyTorch",
          "[lr_scheduler][parity]") {
  Scalar s;
  SGD<double> opt(s.params(), 0.1);
  Optimizer<double>& any = opt;  // the schedules drive any optimizer through the interface
  ExponentialLR<Optimizer<double>> exponential(any, 0.9);
  StepLR<Optimizer<double>> step(any, 4, 0.3);
  CosineAnnealingLR<Optimizer<double>> cosine(any, 15, 0.002), cosine_no_min(any, 7);
  double max_rel = 0;
  for (Index e = 0; e < 40; ++e) {
    const std::size_t i = static_cast<std::size_t>(e);
    CHECK(exponential.lr_at(e) == fx::optim::schedule_exponential[i]);
    CHECK(step.lr_at(e) == fx::optim::schedule_step[i]);
    for (const auto& [ours, theirs] :
         {std::pair{cosine.lr_at(e), fx::optim::schedule_cosine[i]},
          std::pair{cosine_no_min.lr_at(e), fx::optim::schedule_cosine_no_min[i]}}) {
      INFO("epoch " << e << ": ours " << ours << ", PyTorch " << theirs);
      CHECK(std::abs(ours - theirs) <= 1e-17 + 1e-13 * std::abs(theirs));
      if (theirs != 0) max_rel = std::max(max_rel, std::abs(ours - theirs) / theirs);
    }
  }
  INFO("max rel difference of the cosine schedules: " << max_rel);
  CHECK(max_rel < 1e-13);
}

TEST_CASE("StepLR: step() walks PyTorch's epochs, with any optimizer", "[lr_scheduler]") {
  Scalar s;
  Adam<double> opt(s.params(), 0.1);
  StepLR<Optimizer<double>> schedule(opt, 4, 0.3);
  for (std::size_t e = 1; e < 40; ++e) {
    schedule.step();
    CHECK(opt.lr() == fx::optim::schedule_step[e]);  // the same multiplications: exact
  }
  CHECK(schedule.last_epoch() == 39);
}

TEST_CASE("Schedulers: bad arguments throw", "[lr_scheduler][errors]") {
  Scalar s;
  SGD<double> opt(s.params(), 0.1);
  CHECK_THROWS_WITH(ExponentialLR<SGD<double>>(opt, 0.0),
                    "ExponentialLR: gamma must be > 0, got 0");
  CHECK_THROWS_WITH(CosineAnnealingLR<SGD<double>>(opt, 0),
                    "CosineAnnealingLR: T_max must be > 0, got 0");
  CosineAnnealingLR<SGD<double>> cosine(opt, 3);
  CHECK_THROWS_WITH(cosine.set_epoch(-1),
                    "CosineAnnealingLR::set_epoch: epoch must be >= 0, got -1");
}
