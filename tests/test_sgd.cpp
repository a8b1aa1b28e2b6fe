// SPDX-License-Identifier: MIT
// SGD and StepLR: the update rule worked by hand, the schedule of reference 1, misuse.
// (PyTorch trajectories over many steps: tests/test_parity.cpp.)
#include <backprop/linear.hpp>
#include <backprop/sgd.hpp>
#include <catch2/catch.hpp>

#include "test_helpers.hpp"

using namespace backprop;
using backprop_test::Scalar;

TEST_CASE("SGD: plain step is p -= lr * g", "[sgd]") {
  Scalar s;
  SGD<double> opt(s.params(), 0.5);
  s.grad[0] = 2.0;
  opt.step();
  CHECK(s.value[0] == Approx(0.0));
  CHECK(opt.momentum_buffer().empty());
}

TEST_CASE("SGD: momentum buffer starts as the first gradient (PyTorch's rule)", "[sgd]") {
  Scalar s;
  SGD<double> opt(s.params(), 0.1, /*momentum=*/0.9, /*dampening=*/0.5);
  s.grad[0] = 1.0;
  opt.step();  // buf = g = 1 (no dampening on the first step); p = 1 - 0.1
  CHECK(opt.momentum_buffer().at(0)[0] == Approx(1.0));
  CHECK(s.value[0] == Approx(0.9));
  s.grad[0] = 2.0;
  opt.step();  // buf = 0.9 * 1 + 0.5 * 2 = 1.9; p = 0.9 - 0.19
  CHECK(opt.momentum_buffer().at(0)[0] == Approx(1.9));
  CHECK(s.value[0] == Approx(0.71));
}

TEST_CASE("SGD: weight decay and Nesterov", "[sgd]") {
  Scalar s;
  SGD<double> opt(s.params(), 0.1, 0.5, 0.0, /*weight_decay=*/0.1, /*nesterov=*/true);
  s.grad[0] = 1.0;
  opt.step();  // g = 1 + 0.1 * 1 = 1.1; buf = 1.1; d = g + 0.5 * buf = 1.65; p = 1 - 0.165
  CHECK(s.value[0] == Approx(0.835));
  s.grad[0] = 0.0;
  opt.step();  // g = 0.0835; buf = 0.55 + 0.0835 = 0.6335; d = 0.0835 + 0.31675 = 0.40025
  CHECK(s.value[0] == Approx(0.835 - 0.040025));
}

TEST_CASE("SGD: zero_grad and set_lr", "[sgd]") {
  Linear<float> layer(3, 2);
  SGD<float> opt(layer.parameters(), 0.01);
  layer.grad_weight.fill_(1.0f);
  opt.zero_grad();
  CHECK(layer.grad_weight.vector().cwiseAbs().sum() == 0.0f);
  opt.set_lr(0.5);
  CHECK(opt.lr() == 0.5);
}

TEST_CASE("StepLR: reference 1's schedule, lr x0.1 at epochs 0, 5, 10, 15", "[sgd]") {
  Scalar s;
  SGD<double> opt(s.params(), 0.01, 0.5);
  StepLR<SGD<double>> schedule(opt, 5, 0.1, /*decay_at_start=*/true);
  // The reference multiplies in place: lr *= 0.1 when epoch % 5 == 0.
  double reference = 0.01;
  for (Index epoch = 0; epoch < 20; ++epoch) {
    if (epoch % 5 == 0) reference *= 0.1;
    CHECK(schedule.set_epoch(epoch) == reference);  // bit for bit: the same multiplications
    CHECK(opt.lr() == reference);
  }
  // PyTorch's StepLR (no decay at epoch 0), and step_size 0 = constant. The base lr is the
  // optimizer's lr when the schedule is made.
  opt.set_lr(0.01);
  StepLR<SGD<double>> torch_like(opt, 5, 0.1);
  CHECK(torch_like.lr_at(4) == 0.01);
  CHECK(torch_like.lr_at(5) == 0.01 * 0.1);
  StepLR<SGD<double>> constant(opt, 0, 0.1);
  CHECK(constant.lr_at(19) == 0.01);
}

TEST_CASE("SGD and StepLR: bad hyper-parameters throw", "[sgd][errors]") {
  Scalar s;
  CHECK_THROWS_WITH(SGD<double>(s.params(), -0.1), "SGD: lr must be >= 0, got -0.1");
  CHECK_THROWS_WITH(SGD<double>(s.params(), 0.1, -1), "SGD: momentum must be >= 0, got -1");
  CHECK_THROWS_WITH(SGD<double>(s.params(), 0.1, 0, 0, -2),
                    "SGD: weight_decay must be >= 0, got -2");
  CHECK_THROWS_WITH(SGD<double>(s.params(), 0.1, 0.0, 0, 0, true),
                    "SGD: nesterov requires momentum > 0 and dampening = 0, got momentum = 0, "
                    "dampening = 0");
  SGD<double> opt(s.params(), 0.1);
  CHECK_THROWS_WITH(StepLR<SGD<double>>(opt, -1), "StepLR: step_size must be >= 0, got -1");
  CHECK_THROWS_WITH(StepLR<SGD<double>>(opt, 5, 0.0), "StepLR: gamma must be > 0, got 0");
  CHECK_THROWS_WITH(opt.set_lr(-1), "SGD::set_lr: lr must be >= 0, got -1");
}
