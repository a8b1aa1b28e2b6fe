// SPDX-License-Identifier: MIT
// Tanh: gradient check, values (large inputs, NaN), misuse.
// (PyTorch parity: test_parity_layers.cpp.)
#include <backprop/gradcheck.hpp>
#include <backprop/tanh.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

using namespace backprop;

namespace {
const double nan_d = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST_CASE("Tanh: gradcheck", "[tanh][gradcheck]") {
  Generator gen(41);
  Tensor<double> x = Tensor<double>::randn({5, 7}, gen, 0.0, 2.0);

  Tanh<double> act;
  const GradcheckResult r = gradcheck(act, x);  // tolerance: torch gradcheck defaults
  INFO(r.failures);
  CHECK(r.ok);
  CHECK(r.checked == 35);
}

TEST_CASE("Tanh: values, saturation, NaN stays NaN", "[tanh]") {
  Tanh<double> act;
  const Tensor<double> x({1, 5}, {0.0, 0.5, -0.5, 400.0, nan_d});
  const Tensor<double> y = act.forward(x);
  CHECK(y[0] == 0.0);
  CHECK(y[1] == std::tanh(0.5));
  CHECK(y[2] == -y[1]);
  CHECK(y[3] == 1.0);
  CHECK(std::isnan(y[4]));
  const Tensor<double> dx = act.backward(Tensor<double>::full({1, 5}, 2.0));
  CHECK(dx[0] == 2.0);
  CHECK(dx[1] == Approx(2.0 * (1 - std::tanh(0.5) * std::tanh(0.5))).epsilon(1e-15));
  CHECK(dx[3] == 0.0);
  CHECK(std::isnan(dx[4]));
}

TEST_CASE("Tanh: backward with the wrong shape throws", "[tanh][errors]") {
  Tanh<double> act;
  act.forward(Tensor<double>({3, 4}));
  CHECK_THROWS_WITH(
      act.backward(Tensor<double>({4, 3})),
      "Tanh::backward: grad_output has shape [4, 3], expected the output's shape [3, 4]");
}
