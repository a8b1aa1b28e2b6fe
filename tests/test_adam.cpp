// SPDX-License-Identifier: MIT
// Adam and AdamW: the first steps worked by hand, the Optimizer interface, misuse, and
// 200-step trajectories against torch.optim (tests/fixtures/parity_optim.hpp, written by
// tests/reference/make_fixtures_optim.py), alone and driven by each lr scheduler.
#include <backprop/adam.hpp>
#include <backprop/cross_entropy_loss.hpp>
#include <backprop/linear.hpp>
#include <backprop/lr_scheduler.hpp>
#include <backprop/sgd.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <string>

#include "fixtures/parity_optim.hpp"
#include "test_helpers.hpp"

using namespace backprop;
using backprop_test::Scalar;
namespace fx = backprop_fixtures;

namespace {

template <typename T>
Tensor<T> to_tensor(const fx::Array& a) {
  return Tensor<T>(Shape(a.shape.begin(), a.shape.end()),
                   std::vector<T>(a.values.begin(), a.values.end()));
}
}  // namespace

TEST_CASE("Adam: the first step moves each element by lr * g / (|g| + eps)", "[adam]") {
  // m = (1 - b1) g, v = (1 - b2) g^2; the bias corrections divide them back to g and g^2:
  // p -= lr / (1 - b1) * m / (sqrt(v) / sqrt(1 - b2) + eps) = lr * g / (|g| + eps).
  Scalar s;
  Adam<double> opt(s.params(), 0.1);
  s.grad[0] = -4.0;
  opt.step();
  CHECK(s.value[0] == Approx(1.0 + 0.1 * 4.0 / (4.0 + 1e-8)).epsilon(1e-14));
  CHECK(opt.step_count() == 1);
  CHECK(opt.exp_avg()[0][0] == Approx(0.1 * -4.0));
  CHECK(opt.exp_avg_sq()[0][0] == Approx(0.001 * 16.0));
  CHECK(opt.max_exp_avg_sq().empty());
  // Second step, worked by hand with g = 2: m = 0.9 (-0.4) + 0.1 (2) = -0.16,
  // v = 0.999 (0.016) + 0.001 (4) = 0.019984; m_hat = m / 0.19, v_hat = v / 0.001999.
  s.grad[0] = 2.0;
  const double before = s.value[0];
  opt.step();
  const double m_hat = -0.16 / (1 - 0.81), v_hat = 0.019984 / (1 - 0.999 * 0.999);
  CHECK(s.value[0] == Approx(before - 0.1 * m_hat / (std::sqrt(v_hat) + 1e-8)).epsilon(1e-12));
}

TEST_CASE("Adam vs AdamW: L2 in the gradient vs decoupled decay", "[adam]") {
  // With g = 0 and p = 1, Adam's gradient is wd * p, so its first step is lr * sign = lr;
  // AdamW first shrinks p to 1 - lr * wd, then sees g = 0 and moves no further.
  Scalar a, w;
  Adam<double> adam(a.params(), 0.1, {0.9, 0.999}, 1e-8, /*weight_decay=*/0.5);
  AdamW<double> adamw(w.params(), 0.1, {0.9, 0.999}, 1e-8, /*weight_decay=*/0.5);
  adam.step();
  adamw.step();
  CHECK(a.value[0] == Approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-14));
  CHECK(w.value[0] == 1.0 - 0.1 * 0.5);
  CHECK(std::string(adam.name()) == "Adam");
  CHECK(std::string(adamw.name()) == "AdamW");
  // PyTorch's defaults: AdamW's weight_decay is 1e-2, Adam's 0.
  Scalar d;
  AdamW<double> defaults(d.params());
  CHECK(defaults.lr() == 1e-3);
  defaults.step();
  CHECK(d.value[0] == 1.0 * (1 - 1e-3 * 1e-2));
}

TEST_CASE("Adam: amsgrad keeps the largest exp_avg_sq", "[adam]") {
  Scalar s;
  Adam<double> opt(s.params(), 0.1, {0.9, 0.5}, 1e-8, 0, /*amsgrad=*/true);
  s.grad[0] = 10.0;
  opt.step();  // v = 0.5 * 100 = 50
  s.grad[0] = 0.0;
  opt.step();  // v = 25, max stays 50
  CHECK(opt.exp_avg_sq()[0][0] == 25.0);
  CHECK(opt.max_exp_avg_sq()[0][0] == 50.0);
}

TEST_CASE("Optimizer: one interface for SGD, Adam and AdamW", "[adam][optimizer]") {
  Linear<float> layer(3, 2);
  std::vector<std::unique_ptr<Optimizer<float>>> opts;
  opts.push_back(std::make_unique<SGD<float>>(layer.parameters(), 0.1, 0.9));
  opts.push_back(std::make_unique<Adam<float>>(layer.parameters()));
  opts.push_back(std::make_unique<AdamW<float>>(layer.parameters()));
  for (auto& opt : opts) {
    layer.grad_weight.fill_(1.0f);
    opt->zero_grad();
    CHECK(layer.grad_weight.vector().cwiseAbs().sum() == 0.0f);
    opt->set_lr(0.5);
    CHECK(opt->lr() == 0.5);
    CHECK(opt->parameters().size() == 2);
    CHECK_THROWS_WITH(opt->set_lr(-1),
                      std::string(opt->name()) + "::set_lr: lr must be >= 0, got -1");
  }
}

TEST_CASE("Adam: bad hyper-parameters throw", "[adam][errors]") {
  Scalar s;
  CHECK_THROWS_WITH(Adam<double>(s.params(), -1.0), "Adam: lr must be >= 0, got -1");
  CHECK_THROWS_WITH(Adam<double>(s.params(), 1e-3, {1.0, 0.999}),
                    "Adam: beta1 must be in [0, 1), got 1");
  CHECK_THROWS_WITH(AdamW<double>(s.params(), 1e-3, {0.9, -0.1}),
                    "AdamW: beta2 must be in [0, 1), got -0.1");
  CHECK_THROWS_WITH(Adam<double>(s.params(), 1e-3, {0.9, 0.999}, -1.0),
                    "Adam: eps must be >= 0, got -1");
  CHECK_THROWS_WITH(AdamW<double>(s.params(), 1e-3, {0.9, 0.999}, 1e-8, -0.5),
                    "AdamW: weight_decay must be >= 0, got -0.5");
}

// Tolerances against PyTorch, every loss and every sampled weight and bias:
//
// double: rtol 1e-12, atol 1e-14. Both sides compute the same formulas in float64; they
//   differ only by rounding order: ATen's vectorised add/addcmul may fuse a multiply-add
//   (FMA) where our loop does not, its matmul and log-softmax sum in another order. Each
//   step adds a few ulps (1e-16 relative) and the problem is convex (Linear + cross
//   entropy), so the differences do not compound: over 200 steps they stay near 1e-14.
//   1e-12 leaves two orders of headroom and is still far below a formula mistake: the
//   subtlest one tried, eps added before the bias correction of v instead of after, moves
//   the loss of the second step by 2e-8 relative (10^4 x the tolerance; checked by mutating
//   adam.hpp). atol 1e-14 covers entries that pass near zero, where the relative error is
//   meaningless.
// float: an error model. Each step rounds about 10 float operations per element (u = 6e-8)
//   in an order that may differ from ATen's (FMA or not, another matmul order), so each step
//   adds ~10 u = 6e-7 relative difference to the parameters; over k steps these add like a
//   random walk (the problem is convex, so they do not grow): sqrt(200) * 6e-7 ~ 8e-6. An
//   update is lr * m / denom, O(lr) whatever the gradient's size, so entries near zero carry
//   an absolute difference of about 10 u * lr * sqrt(k) ~ 2e-8. rtol 5e-5 and atol 2e-6 are
//   ~6x and ~100x those estimates.
//   Measured (clang 14, -O2, this machine): double max rel 2.4e-14 (amsgrad cases; <= 6.4e-15
//   otherwise) on entries above 1e-3, max abs 4.4e-16; float max rel 5.5e-6, max abs 2.4e-7.
// check_close prints the max abs/rel errors on failure.
template <typename T>
struct ParityTol;
template <>
struct ParityTol<double> {
  static constexpr double rtol = 1e-12, atol = 1e-14;
};
template <>
struct ParityTol<float> {
  static constexpr double rtol = 5e-5, atol = 2e-6;
};

template <typename T>
void run_parity(const fx::AdamCase& c, const char* type) {
  const std::string what = std::string(type) + " " + c.name + ":";
  Linear<T> linear(fx::optim::in_features, fx::optim::out_features);
  linear.weight = to_tensor<T>(fx::optim::initial_weight);
  linear.bias = to_tensor<T>(fx::optim::initial_bias);
  CrossEntropyLoss<T> criterion;
  std::unique_ptr<Optimizer<T>> opt;
  if (std::string(c.optimizer) == "AdamW")
    opt = std::make_unique<AdamW<T>>(linear.parameters(), c.lr, std::pair{c.beta1, c.beta2}, c.eps,
                                     c.weight_decay, c.amsgrad);
  else
    opt = std::make_unique<Adam<T>>(linear.parameters(), c.lr, std::pair{c.beta1, c.beta2}, c.eps,
                                    c.weight_decay, c.amsgrad);
  const std::string sched = c.scheduler;
  std::unique_ptr<ExponentialLR<Optimizer<T>>> exponential;
  std::unique_ptr<CosineAnnealingLR<Optimizer<T>>> cosine;
  std::unique_ptr<StepLR<Optimizer<T>>> step_lr;
  if (sched == "ExponentialLR")
    exponential = std::make_unique<ExponentialLR<Optimizer<T>>>(*opt, c.gamma);
  if (sched == "CosineAnnealingLR")
    cosine = std::make_unique<CosineAnnealingLR<Optimizer<T>>>(*opt, c.T_max, c.eta_min);
  if (sched == "StepLR")
    step_lr = std::make_unique<StepLR<Optimizer<T>>>(*opt, c.step_size, c.gamma);

  const Index out = fx::optim::out_features, in = fx::optim::in_features;
  const std::size_t nb = static_cast<std::size_t>(fx::optim::num_batches);
  Index sample = 0;
  double max_lr_rel = 0;
  for (Index step = 0; step < fx::optim::num_steps; ++step) {
    const std::size_t s = static_cast<std::size_t>(step);
    // The lr: ExponentialLR and StepLR multiply as PyTorch does (bit for bit); cosine uses
    // the closed form where PyTorch recurses, equal to a few ulps.
    max_lr_rel = std::max(max_lr_rel, std::abs(opt->lr() - c.lrs[s]) / c.lrs[s]);
    REQUIRE(opt->lr() == Approx(c.lrs[s]).epsilon(1e-13).margin(0));
    if (sched != "CosineAnnealingLR") REQUIRE(opt->lr() == c.lrs[s]);
    opt->zero_grad();
    const T loss = criterion.forward(
        linear.forward(to_tensor<T>(fx::optim::train_x[s % nb])),
        Tensor<std::int64_t>({fx::optim::batch}, fx::optim::train_target[s % nb]));
    linear.backward(criterion.backward());
    opt->step();
    const std::string at = what + " step " + std::to_string(step);
    backprop_test::check_close(Tensor<T>(Shape{}, std::vector<T>{loss}),
                               std::vector<double>{c.losses[s]}, Shape{}, ParityTol<T>::rtol,
                               ParityTol<T>::atol, at + " loss");
    if ((step + 1) % fx::optim::sample_every == 0) {
      const auto w0 = c.weights.values.begin() + sample * out * in;
      const auto b0 = c.biases.values.begin() + sample * out;
      backprop_test::check_close(linear.weight, std::vector<double>(w0, w0 + out * in),
                                 Shape{out, in}, ParityTol<T>::rtol, ParityTol<T>::atol,
                                 at + " weight");
      backprop_test::check_close(linear.bias, std::vector<double>(b0, b0 + out), Shape{out},
                                 ParityTol<T>::rtol, ParityTol<T>::atol, at + " bias");
      ++sample;
    }
    if ((step + 1) % fx::optim::steps_per_epoch == 0) {  // end of an epoch
      if (exponential) exponential->step();
      if (cosine) cosine->step();
      if (step_lr) step_lr->set_epoch((step + 1) / fx::optim::steps_per_epoch);
    }
  }
  CHECK(sample * fx::optim::sample_every == fx::optim::num_steps);
  INFO(what << " max lr rel err " << max_lr_rel);
  CHECK(max_lr_rel <= 1e-13);
}

TEST_CASE("Parity: Adam and AdamW over 200 steps against torch.optim (double)", "[adam][parity]") {
  REQUIRE(fx::optim::f64.size() == 8);
  for (const fx::AdamCase& c : fx::optim::f64) run_parity<double>(c, "double");
}

TEST_CASE("Parity: AdamW with amsgrad and weight decay over 200 steps (float)", "[adam][parity]") {
  REQUIRE(fx::optim::f32.size() == 1);
  run_parity<float>(fx::optim::f32[0], "float");
}
