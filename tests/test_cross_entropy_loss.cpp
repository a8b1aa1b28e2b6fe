// SPDX-License-Identifier: MIT
// CrossEntropyLoss: gradient check, known values, stability with large logits, misuse.
#include <backprop/cross_entropy_loss.hpp>
#include <backprop/gradcheck.hpp>
#include <catch2/catch.hpp>
#include <cmath>

using namespace backprop;

TEST_CASE("CrossEntropyLoss: gradcheck, mean, sum and none", "[cross_entropy_loss][gradcheck]") {
  Generator gen(8);
  const Tensor<double> logits = Tensor<double>::randn({5, 7}, gen, 0.0, 2.0);
  const Tensor<std::int64_t> target({5}, {0, 6, 3, 3, 1});
  for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    CrossEntropyLoss<double> criterion(reduction);
    // L = sum(loss * R), R random of the loss's shape; torch gradcheck tolerances
    const GradcheckResult r = gradcheck(criterion, logits, target);
    INFO("reduction " << int(reduction) << "\n" << r.failures);
    CHECK(r.ok);
    CHECK(r.checked == 35);
  }
}

TEST_CASE("CrossEntropyLoss: known values", "[cross_entropy_loss]") {
  CrossEntropyLoss<double> criterion;
  // uniform logits: loss = log(C)
  CHECK(criterion.forward(Tensor<double>({2, 4}), Tensor<std::int64_t>({2}, {1, 3})) ==
        Approx(std::log(4.0)));
  // one row: log(e^1 + e^2 + e^3) - 2
  const double expected = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 2.0;
  CHECK(criterion.forward(Tensor<double>({1, 3}, {1, 2, 3}), Tensor<std::int64_t>({1}, {1})) ==
        Approx(expected));
  // gradient = softmax - onehot (N = 1)
  const Tensor<double>& dx = criterion.backward();
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(dx[0] == Approx(std::exp(1.0) / z));
  CHECK(dx[1] == Approx(std::exp(2.0) / z - 1.0));
  CHECK(dx.vector().sum() == Approx(0.0).margin(1e-15));
  // grad_output scales the gradient (chain rule through whatever uses the loss)
  CHECK(criterion.backward(2.0)[2] == Approx(2.0 * std::exp(3.0) / z));
}

TEST_CASE("CrossEntropyLoss: stable for huge logits", "[cross_entropy_loss]") {
  CrossEntropyLoss<float> criterion;
  const Tensor<float> logits({2, 3}, {1000.0f, 0.0f, -1000.0f, 10000.0f, 10000.0f, 0.0f});
  const float loss = criterion.forward(logits, Tensor<std::int64_t>({2}, {0, 1}));
  CHECK(std::isfinite(loss));
  CHECK(loss == Approx((0.0 + std::log(2.0)) / 2));
  const Tensor<float>& dx = criterion.backward();
  for (float v : dx) CHECK(std::isfinite(v));
  CHECK(dx[4] == Approx((0.5 - 1.0) / 2));
}

TEST_CASE("CrossEntropyLoss: reduction none gives loss_n and takes g_n", "[cross_entropy_loss]") {
  CrossEntropyLoss<double> criterion(Reduction::None);
  const Tensor<double>& loss = criterion.forward_tensor(Tensor<double>({2, 3}, {1, 2, 3, 0, 0, 0}),
                                                        Tensor<std::int64_t>({2}, {1, 2}));
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  REQUIRE(loss.shape() == Shape{2});
  CHECK(loss[0] == Approx(std::log(z) - 2.0));
  CHECK(loss[1] == Approx(std::log(3.0)));
  const Tensor<double>& dx = criterion.backward(Tensor<double>({2}, {2.0, 0.0}));
  CHECK(dx[1] == Approx(2.0 * (std::exp(2.0) / z - 1.0)));
  CHECK(dx[3] == 0.0);  // g_1 = 0 zeroes row 1
}

TEST_CASE("num_correct counts argmax hits, first index on ties", "[cross_entropy_loss]") {
  const Tensor<float> logits({3, 3}, {0, 5, 1, 2, 2, 0, 0, 0, 9});
  CHECK(num_correct(logits, Tensor<std::int64_t>({3}, {1, 0, 1})) == 2);
}

TEST_CASE("CrossEntropyLoss: misuse throws naming the problem", "[cross_entropy_loss][errors]") {
  CrossEntropyLoss<float> criterion;
  CHECK_THROWS_WITH(criterion.forward(Tensor<float>({2, 10}), Tensor<std::int64_t>({2}, {3, 10})),
                    "CrossEntropyLoss::forward: target[1] = 10 is out of range for 10 classes");
  CHECK_THROWS_WITH(criterion.forward(Tensor<float>({2, 10}), Tensor<std::int64_t>({2}, {-1, 0})),
                    "CrossEntropyLoss::forward: target[0] = -1 is out of range for 10 classes");
  CHECK_THROWS_WITH(criterion.forward(Tensor<float>({2, 10}), Tensor<std::int64_t>({3})),
                    "CrossEntropyLoss::forward: target has shape [3], expected [2]");
  CHECK_THROWS_WITH(criterion.forward(Tensor<float>({10}), Tensor<std::int64_t>({1})),
                    "CrossEntropyLoss::forward: input must be 2-D (N, C) logits, got shape [10]");
  CHECK_THROWS_WITH(CrossEntropyLoss<float>().backward(),
                    "CrossEntropyLoss::backward: called before forward");
}
