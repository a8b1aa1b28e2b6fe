// SPDX-License-Identifier: MIT
// L1Loss: gradient check under every reduction (off the kink), the subgradient at 0, values,
// misuse. (PyTorch parity: test_parity_layers.cpp.)
#include <backprop/gradcheck.hpp>
#include <backprop/l1_loss.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

using namespace backprop;

TEST_CASE("L1Loss: gradcheck, mean, sum and none", "[l1_loss][gradcheck]") {
  Generator gen(51);
  Tensor<double> x = Tensor<double>::randn({5, 3}, gen);
  const Tensor<double> t = Tensor<double>::randn({5, 3}, gen);
  // keep every x at least 0.1 away from its target: central differences must not straddle
  // the kink of |x - t|
  for (Index i = 0; i < x.numel(); ++i) x[i] = t[i] + (x[i] >= t[i] ? 0.1 : -0.1) + (x[i] - t[i]);
  for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    L1Loss<double> criterion(reduction);
    const GradcheckResult r = gradcheck(criterion, x, t);  // torch gradcheck tolerances
    INFO("reduction " << int(reduction) << "\n" << r.failures);
    CHECK(r.ok);
    CHECK(r.checked == 15);
  }
}

TEST_CASE("L1Loss: values, and sign(0) = 0 at x = t as PyTorch", "[l1_loss]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor<double> x({1, 5}, {1, 2, 3, 4, nan}), t({1, 5}, {1, 0, 5, 4, 0});
  L1Loss<double> sum(Reduction::Sum);
  CHECK(std::isnan(sum.forward(x, t)));
  CHECK(sum.backward() == Tensor<double>({1, 5}, {0, 1, -1, 0, 0}));  // NaN: 0, as torch
  L1Loss<double> mean;
  CHECK(mean.forward(Tensor<double>({2}, {1, 2}), Tensor<double>({2}, {0, 4})) == 1.5);
  CHECK(mean.backward() == Tensor<double>({2}, {0.5, -0.5}));
  L1Loss<double> none(Reduction::None);
  CHECK(none.forward_tensor(Tensor<double>({2}, {1, 2}), Tensor<double>({2}, {0, 4})) ==
        Tensor<double>({2}, {1, 2}));
}

TEST_CASE("L1Loss: misuse throws naming the problem", "[l1_loss][errors]") {
  L1Loss<float> criterion;
  CHECK_THROWS_WITH(criterion.forward(Tensor<float>({2, 3}), Tensor<float>({6})),
                    "L1Loss::forward: input has shape [2, 3] but target has shape [6]");
  CHECK_THROWS_WITH(criterion.backward(), "L1Loss::backward: called before forward");
}
