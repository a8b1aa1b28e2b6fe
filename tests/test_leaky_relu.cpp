// SPDX-License-Identifier: MIT
// LeakyReLU: gradient check, values (large inputs, NaN), misuse.
// (PyTorch parity: test_parity_layers.cpp.)
#include <backprop/gradcheck.hpp>
#include <backprop/leaky_relu.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "test_helpers.hpp"

using namespace backprop;

namespace {
const double nan_d = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST_CASE("LeakyReLU: gradcheck", "[leaky_relu][gradcheck]") {
  Generator gen(43);
  Tensor<double> x = Tensor<double>::randn({5, 7}, gen, 0.0, 2.0);
  // Central differences straddle the kink only if |x| < eps: keep every input 0.1 away.
  for (double& v : x) v = v >= 0 ? v + 0.1 : v - 0.1;
  LeakyReLU<double> act(0.2);
  const GradcheckResult r = gradcheck(act, x);  // tolerance: torch gradcheck defaults
  INFO(r.failures);
  CHECK(r.ok);
  CHECK(r.checked == 35);
}

TEST_CASE("LeakyReLU: values, the slope at 0, NaN as PyTorch", "[leaky_relu]") {
  LeakyReLU<double> act;  // negative_slope 0.01
  CHECK(act.negative_slope() == 0.01);
  const Tensor<double> x({1, 5}, {-2.0, 0.0, 3.0, -0.0, nan_d});
  const Tensor<double> y = act.forward(x);
  CHECK(y[0] == -2.0 * 0.01);
  CHECK(y[1] == 0.0);
  CHECK(y[2] == 3.0);
  CHECK(std::isnan(y[4]));
  const Tensor<double> dx = act.backward(Tensor<double>::full({1, 5}, 3.0));
  CHECK(dx[0] == 3.0 * 0.01);
  CHECK(dx[1] == 3.0 * 0.01);  // x = 0 takes the negative slope, as PyTorch (x > 0 is false)
  CHECK(dx[2] == 3.0);
  CHECK(dx[4] == 3.0 * 0.01);  // NaN > 0 is false: as PyTorch
}

TEST_CASE("LeakyReLU: backward with the wrong shape throws", "[leaky_relu][errors]") {
  LeakyReLU<double> act(0.2);
  act.forward(Tensor<double>({3, 4}));
  CHECK_THROWS_WITH(
      act.backward(Tensor<double>({4, 3})),
      "LeakyReLU::backward: grad_output has shape [4, 3], expected the output's shape [3, 4]");
}

TEST_CASE("NoGradGuard: LeakyReLU keeps no copy of x, gives the same bits, then refuses backward",
          "[leaky_relu][no_grad]") {
  Generator gen(14);
  const Tensor<float> x1 = Tensor<float>::randn({33, 37}, gen);
  const Tensor<float> x2 = Tensor<float>::randn({33, 37}, gen);
  backprop_test::check_no_grad(
      LeakyReLU<float>(0.2), x1, x2,
      "LeakyReLU::backward: called before forward, or after a forward under NoGradGuard");
  CHECK_THROWS_WITH(
      LeakyReLU<float>().backward(Tensor<float>({2, 3})),
      "LeakyReLU::backward: called before forward, or after a forward under NoGradGuard");
}
