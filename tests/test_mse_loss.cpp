// SPDX-License-Identifier: MIT
// MSELoss: gradient check under every reduction, values, misuse. (PyTorch parity:
// test_parity_layers.cpp.)
#include <backprop/gradcheck.hpp>
#include <backprop/mse_loss.hpp>
#include <catch2/catch.hpp>

using namespace backprop;

TEST_CASE("MSELoss: gradcheck, mean, sum and none", "[mse_loss][gradcheck]") {
  Generator gen(50);
  const Tensor<double> x = Tensor<double>::randn({5, 3}, gen);
  const Tensor<double> t = Tensor<double>::randn({5, 3}, gen);
  for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    MSELoss<double> criterion(reduction);
    // L = sum(loss * R), R random of the loss's shape; torch gradcheck tolerances
    const GradcheckResult r = gradcheck(criterion, x, t);
    INFO("reduction " << int(reduction) << "\n" << r.failures);
    CHECK(r.ok);
    CHECK(r.checked == 15);
  }
}

TEST_CASE("MSELoss: values by hand", "[mse_loss]") {
  const Tensor<double> x({2, 2}, {1, 2, 3, 4}), t({2, 2}, {1, 0, 5, 1});
  MSELoss<double> mean;
  CHECK(mean.forward(x, t) == (0 + 4 + 4 + 9) / 4.0);                 // over all elements, not rows
  CHECK(mean.backward() == Tensor<double>({2, 2}, {0, 1, -1, 1.5}));  // 2 (x - t) / 4
  MSELoss<double> sum(Reduction::Sum);
  CHECK(sum(x, t) == 17.0);
  CHECK(sum.backward(0.5) == Tensor<double>({2, 2}, {0, 2, -2, 3}));
  MSELoss<double> none(Reduction::None);
  CHECK(none.forward_tensor(x, t) == Tensor<double>({2, 2}, {0, 4, 4, 9}));
  CHECK(none.backward(Tensor<double>({2, 2}, {1, 1, 2, 0})) ==
        Tensor<double>({2, 2}, {0, 4, -8, 0}));
}

TEST_CASE("MSELoss: misuse throws naming the problem", "[mse_loss][errors]") {
  MSELoss<float> criterion;
  CHECK_THROWS_WITH(criterion.forward(Tensor<float>({2, 3}), Tensor<float>({3, 2})),
                    "MSELoss::forward: input has shape [2, 3] but target has shape [3, 2]");
  CHECK_THROWS_WITH(criterion.backward(), "MSELoss::backward: called before forward");
}
