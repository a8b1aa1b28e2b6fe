// SPDX-License-Identifier: MIT
// GELU: gradient check, values (large inputs, NaN), misuse.
// (PyTorch parity: test_parity_layers.cpp.)
#include <backprop/gelu.hpp>
#include <backprop/gradcheck.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "test_helpers.hpp"

using namespace backprop;

namespace {
const double nan_d = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST_CASE("GELU: gradcheck", "[gelu][gradcheck]") {
  Generator gen(42);
  Tensor<double> x = Tensor<double>::randn({5, 7}, gen, 0.0, 2.0);
  for (const char* approximate : {"none", "tanh"}) {
    GELU<double> act(approximate);
    const GradcheckResult r = gradcheck(act, x);  // tolerance: torch gradcheck defaults
    INFO("approximate = " << approximate << "\n" << r.failures);
    CHECK(r.ok);
    CHECK(r.checked == 35);
  }
}

TEST_CASE("GELU: values of both forms, NaN stays NaN", "[gelu]") {
  GELU<double> exact, approx("tanh");
  CHECK(exact.approximate() == "none");
  const Tensor<double> x({1, 5}, {0.0, 1.0, -1.0, 40.0, nan_d});
  const Tensor<double> y = exact.forward(x);
  CHECK(y[0] == 0.0);
  CHECK(y[1] == Approx(0.8413447460685429).epsilon(1e-15));    // Phi(1)
  CHECK(y[2] == Approx(-0.15865525393145707).epsilon(1e-14));  // -1 * Phi(-1)
  CHECK(y[3] == 40.0);
  CHECK(std::isnan(y[4]));
  const Tensor<double> dx = exact.backward(Tensor<double>::ones({1, 5}));
  CHECK(dx[0] == 0.5);
  // Phi(1) + phi(1)
  CHECK(dx[1] == Approx(0.8413447460685429 + 0.24197072451914337).epsilon(1e-15));
  CHECK(dx[3] == 1.0);
  CHECK(std::isnan(dx[4]));
  const Tensor<double> ya = approx.forward(x);
  CHECK(ya[1] ==
        Approx(0.5 * (1 + std::tanh(std::sqrt(2 / M_PI) * (1 + 0.044715)))).epsilon(1e-15));
  CHECK(std::abs(ya[1] - y[1]) < 1e-3);  // the approximation is close, not equal
  CHECK(ya[1] != y[1]);
  CHECK(std::isnan(approx.backward(Tensor<double>::ones({1, 5}))[4]));
  CHECK_THROWS_WITH(GELU<float>("fast"), "GELU: approximate must be 'none' or 'tanh', got 'fast'");
}

TEST_CASE("GELU: backward with the wrong shape throws", "[gelu][errors]") {
  GELU<double> act;
  act.forward(Tensor<double>({3, 4}));
  CHECK_THROWS_WITH(
      act.backward(Tensor<double>({4, 3})),
      "GELU::backward: grad_output has shape [4, 3], expected the output's shape [3, 4]");
}

TEST_CASE("NoGradGuard: GELU keeps no copy of x, gives the same bits, then refuses backward",
          "[gelu][no_grad]") {
  Generator gen(13);
  const Tensor<float> x1 = Tensor<float>::randn({33, 37}, gen, 0.0, 2.0);
  const Tensor<float> x2 = Tensor<float>::randn({33, 37}, gen, 0.0, 2.0);
  for (const char* approximate : {"none", "tanh"}) {
    INFO("approximate = " << approximate);
    backprop_test::check_no_grad(
        GELU<float>(approximate), x1, x2,
        "GELU::backward: called before forward, or after a forward under NoGradGuard");
  }
  CHECK_THROWS_WITH(GELU<float>().backward(Tensor<float>({2, 3})),
                    "GELU::backward: called before forward, or after a forward under NoGradGuard");
}
