// SPDX-License-Identifier: MIT
// The Loss interface: every loss through a base reference, Reduction::None's tensor and its
// misuse, grad_output shape checks.
#include <backprop/bce_with_logits_loss.hpp>
#include <backprop/cross_entropy_loss.hpp>
#include <backprop/l1_loss.hpp>
#include <backprop/loss.hpp>
#include <backprop/mse_loss.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <vector>

using namespace backprop;

TEST_CASE("Loss: float-target losses used through one interface", "[loss]") {
  std::vector<std::unique_ptr<Loss<double>>> losses;
  losses.push_back(std::make_unique<MSELoss<double>>());
  losses.push_back(std::make_unique<L1Loss<double>>(Reduction::Sum));
  losses.push_back(std::make_unique<BCEWithLogitsLoss<double>>());
  const Tensor<double> x({2, 2}, {0.5, -1, 2, 0}), t({2, 2}, {1, 0, 1, 0});
  for (auto& loss : losses) {
    const double l = loss->forward(x, t);
    CHECK(loss->forward_tensor(x, t).dim() == 0);
    CHECK(loss->forward_tensor(x, t)[0] == l);
    CHECK(loss->backward().shape() == x.shape());
  }
}

TEST_CASE("Loss: reduction None returns the unreduced tensor, Mean and Sum are its mean and sum",
          "[loss]") {
  Generator gen(53);
  const Tensor<double> logits = Tensor<double>::randn({4, 3}, gen);
  const Tensor<std::int64_t> labels({4}, {2, 0, 1, 1});
  CrossEntropyLoss<double> none(Reduction::None), mean, sum(Reduction::Sum);
  const Tensor<double> per_sample = none.forward_tensor(logits, labels);
  REQUIRE(per_sample.shape() == Shape{4});
  CHECK(sum.forward(logits, labels) == Approx(per_sample.vector().sum()).epsilon(1e-15));
  CHECK(mean.forward(logits, labels) == Approx(per_sample.vector().mean()).epsilon(1e-15));
  // backward with grad_output = ones gives the Sum gradient
  const Tensor<double> g_none = none.backward(Tensor<double>::ones({4}));
  const Tensor<double>& g_sum = sum.backward();
  for (Index i = 0; i < g_sum.numel(); ++i) CHECK(g_none[i] == Approx(g_sum[i]).epsilon(1e-15));
}

TEST_CASE("Loss: misuse of the reductions throws naming the problem", "[loss][errors]") {
  MSELoss<float> none(Reduction::None);
  const Tensor<float> x({2, 3}), t({2, 3});
  CHECK_THROWS_WITH(none.forward(x, t),
                    "MSELoss::forward: reduction is None, so the loss is a tensor: call "
                    "forward_tensor(input, target)");
  none.forward_tensor(x, t);
  CHECK_THROWS_WITH(none.backward(),
                    "MSELoss::backward: reduction is None: pass grad_output as a tensor of the "
                    "loss's shape");
  CHECK_THROWS_WITH(
      none.backward(Tensor<float>({6})),
      "MSELoss::backward: grad_output has shape [6], expected the loss's shape [2, 3]");
  MSELoss<float> mean;
  mean.forward(x, t);
  CHECK_THROWS_WITH(
      mean.backward(Tensor<float>({2, 3})),
      "MSELoss::backward: grad_output has shape [2, 3], expected the loss's shape []");
}
