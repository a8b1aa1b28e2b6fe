// SPDX-License-Identifier: MIT
// Sigmoid: gradient check, values (large inputs, NaN), misuse.
// (PyTorch parity: test_parity_layers.cpp.)
#include <backprop/gradcheck.hpp>
#include <backprop/sigmoid.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

using namespace backprop;

namespace {
const double nan_d = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST_CASE("Sigmoid: gradcheck", "[sigmoid][gradcheck]") {
  Generator gen(40);
  Tensor<double> x = Tensor<double>::randn({5, 7}, gen, 0.0, 2.0);

  Sigmoid<double> act;
  const GradcheckResult r = gradcheck(act, x);  // tolerance: torch gradcheck defaults
  INFO(r.failures);
  CHECK(r.ok);
  CHECK(r.checked == 35);
}

TEST_CASE("Sigmoid: values, no overflow for large |x|, NaN stays NaN", "[sigmoid]") {
  Sigmoid<double> act;
  const Tensor<double> x({1, 6}, {0.0, 2.0, -2.0, 800.0, -800.0, nan_d});
  const Tensor<double> y = act.forward(x);
  CHECK(y[0] == 0.5);
  CHECK(y[1] == Approx(1.0 / (1.0 + std::exp(-2.0))).epsilon(1e-15));
  CHECK(y[2] == Approx(std::exp(-2.0) / (1.0 + std::exp(-2.0))).epsilon(1e-15));
  CHECK(y[3] == 1.0);  // exp(-800) underflows to 0: no inf/inf
  CHECK(y[4] == 0.0);
  CHECK(std::isnan(y[5]));
  const Tensor<double> dx = act.backward(Tensor<double>::ones({1, 6}));
  CHECK(dx[0] == 0.25);
  CHECK(dx[1] == Approx(y[1] * (1 - y[1])).epsilon(1e-15));
  CHECK(dx[3] == 0.0);
  CHECK(dx[4] == 0.0);
  CHECK(std::isnan(dx[5]));  // as PyTorch: dy * y * (1 - y) with y = NaN
  CHECK(act.parameters().empty());
}

TEST_CASE("Sigmoid: backward with the wrong shape throws", "[sigmoid][errors]") {
  Sigmoid<double> act;
  act.forward(Tensor<double>({3, 4}));
  CHECK_THROWS_WITH(
      act.backward(Tensor<double>({4, 3})),
      "Sigmoid::backward: grad_output has shape [4, 3], expected the output's shape [3, 4]");
}
