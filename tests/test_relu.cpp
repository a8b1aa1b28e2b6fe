// SPDX-License-Identifier: MIT
// ReLU: gradient check (inputs kept off the kink at 0), values, misuse.
#include <backprop/gradcheck.hpp>
#include <backprop/relu.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

using namespace backprop;

TEST_CASE("ReLU: gradcheck away from the kink", "[relu][gradcheck]") {
  Generator gen(4);
  Tensor<double> x = Tensor<double>::randn({5, 7}, gen);
  // Central differences straddle 0 only if |x| < eps: keep every input at least 0.1 away.
  for (double& v : x) v = v >= 0 ? v + 0.1 : v - 0.1;
  ReLU<double> relu;
  const GradcheckResult r = gradcheck(relu, x);  // tolerance: torch gradcheck defaults
  INFO(r.failures);
  CHECK(r.ok);
  CHECK(r.checked == 35);
}

TEST_CASE("ReLU: forward and backward values, any rank", "[relu]") {
  ReLU<float> relu;
  const Tensor<float> x({2, 1, 2}, {-1.0f, 0.0f, 2.0f, -3.0f});
  const Tensor<float>& y = relu.forward(x);
  CHECK(y == Tensor<float>({2, 1, 2}, {0.0f, 0.0f, 2.0f, 0.0f}));
  const Tensor<float>& dx = relu.backward(Tensor<float>({2, 1, 2}, {5, 6, 7, 8}));
  // the subgradient at exactly 0 is 0, as in PyTorch
  CHECK(dx == Tensor<float>({2, 1, 2}, {0, 0, 7, 0}));
  CHECK(relu.parameters().empty());
}

TEST_CASE("ReLU: backward with the wrong shape throws", "[relu][errors]") {
  ReLU<float> relu;
  relu.forward(Tensor<float>({3, 4}));
  CHECK_THROWS_WITH(
      relu.backward(Tensor<float>({4, 3})),
      "ReLU::backward: grad_output has shape [4, 3], expected the output's shape [3, 4]");
}

TEST_CASE("ReLU: NaN stays NaN, and its gradient is PyTorch's", "[relu]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // enough elements that the vectorised loop body runs, not only the scalar tail
  Tensor<float> x = Tensor<float>::full({3, 33}, -1.0f);
  x[0] = nan;
  x[17] = nan;
  x[64] = nan;
  x[5] = 2.0f;
  x[6] = -0.0f;
  ReLU<float> relu;
  const Tensor<float> y = relu.forward(x);
  CHECK(std::isnan(y[0]));
  CHECK(std::isnan(y[17]));
  CHECK(std::isnan(y[64]));
  CHECK(y[5] == 2.0f);
  CHECK(y[1] == 0.0f);
  CHECK(std::signbit(y[6]));  // relu(-0.0) = -0.0, as torch.relu
  Tensor<float> dy = Tensor<float>::full({3, 33}, 3.0f);
  dy[1] = nan;  // where y = 0: the gradient is 0, not NaN (a select, as threshold_backward)
  dy[5] = nan;  // where y > 0: NaN passes
  const Tensor<float> dx = relu.backward(dy);
  // threshold_backward(dy, y, 0) = y <= 0 ? 0 : dy: a NaN y is not <= 0, so dy passes
  CHECK(dx[0] == 3.0f);
  CHECK(dx[17] == 3.0f);
  CHECK(dx[64] == 3.0f);
  CHECK(dx[1] == 0.0f);
  CHECK(std::isnan(dx[5]));
  CHECK(dx[6] == 0.0f);
}
