// SPDX-License-Identifier: MIT
// Linear: finite-difference gradient check, accumulation, initialisation, misuse.
#include <backprop/gradcheck.hpp>
#include <backprop/linear.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <thread>

using namespace backprop;

// Tolerance for every gradcheck here: torch.autograd.gradcheck's double defaults,
// |analytic - numeric| <= 1e-5 + 1e-3 |numeric| with eps = 1e-6 (see GradcheckOptions).

TEST_CASE("Linear: gradcheck of input, weight and bias on odd shapes", "[linear][gradcheck]") {
  Generator gen(1);
  for (bool bias : {true, false}) {
    Linear<double> layer(7, 3, bias, gen);
    const Tensor<double> x = Tensor<double>::randn({5, 7}, gen);
    const GradcheckResult r = gradcheck(layer, x);
    INFO(r.failures);
    CHECK(r.ok);
    CHECK(r.checked == 5 * 7 + 3 * 7 + (bias ? 3 : 0));  // every element of every gradient
    CHECK(r.max_abs_error < 1e-8);
  }
}

TEST_CASE("Linear: forward is x W^T + b", "[linear]") {
  Linear<double> layer(2, 2);
  layer.weight = Tensor<double>({2, 2}, {1, 2, 3, 4});
  layer.bias = Tensor<double>({2}, {10, 20});
  const Tensor<double> x({1, 2}, {1, 1});
  const Tensor<double>& y = layer.forward(x);
  CHECK(y[0] == 13.0);  // 1 + 2 + 10
  CHECK(y[1] == 27.0);  // 3 + 4 + 20
}

TEST_CASE("Linear: two backwards accumulate twice the gradient, zero_grad clears", "[linear]") {
  Generator gen(2);
  Linear<double> layer(4, 3, true, gen);
  const Tensor<double> x = Tensor<double>::randn({5, 4}, gen);
  const Tensor<double> dy = Tensor<double>::randn({5, 3}, gen);
  layer.forward(x);
  const Tensor<double> dx1 = layer.backward(dy);
  const Tensor<double> gw1 = layer.grad_weight, gb1 = layer.grad_bias;
  const Tensor<double> dx2 = layer.backward(dy);
  CHECK(dx1 == dx2);  // dL/dx is returned, not accumulated
  for (Index i = 0; i < gw1.numel(); ++i) CHECK(layer.grad_weight[i] == Approx(2 * gw1[i]));
  for (Index i = 0; i < gb1.numel(); ++i) CHECK(layer.grad_bias[i] == Approx(2 * gb1[i]));
  CHECK(gw1.vector().norm() > 0);
  layer.zero_grad();
  CHECK(layer.grad_weight.vector().norm() == 0.0);
  CHECK(layer.grad_bias.vector().norm() == 0.0);
}

TEST_CASE("Linear: default initialisation is U(-1/sqrt(in), 1/sqrt(in))", "[linear]") {
  Generator gen(3);
  Linear<float> layer(400, 50, true, gen);
  const float bound = 1.0f / std::sqrt(400.0f);
  CHECK(layer.weight.vector().maxCoeff() < bound);
  CHECK(layer.weight.vector().minCoeff() >= -bound);
  CHECK(layer.bias.vector().cwiseAbs().maxCoeff() <= bound);
  // mean ~ 0 and variance ~ bound^2 / 3 over 20000 draws
  const double mean = layer.weight.vector().cast<double>().mean();
  const double var = (layer.weight.vector().cast<double>().array() - mean).square().mean();
  CHECK(std::abs(mean) < 0.01 * bound);
  CHECK(var == Approx(bound * bound / 3.0).epsilon(0.03));
  // the same seed gives the same weights
  Generator again(3);
  CHECK(Linear<float>(400, 50, true, again).weight == layer.weight);
}

TEST_CASE("Linear: state names are weight and bias", "[linear]") {
  Linear<float> with_bias(3, 2), without(3, 2, false);
  const auto entries = with_bias.state_dict();
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].name == "weight");
  CHECK(entries[1].name == "bias");
  CHECK(without.parameters().size() == 1);
}

TEST_CASE("Linear: misuse throws naming class, argument, expected and got", "[linear][errors]") {
  Linear<float> layer(784, 10);
  CHECK_THROWS_WITH(layer.forward(Tensor<float>({2, 783})),
                    "Linear::forward: x has 783 columns, expected in_features = 784");
  CHECK_THROWS_WITH(layer.forward(Tensor<float>({784})),
                    "Linear::forward: x must be 2-D (N, in_features), got shape [784]");
  CHECK_THROWS_WITH(Linear<float>(0, 3), "Linear: in_features must be positive, got 0");
  CHECK_THROWS_WITH(Linear<float>(3, -1), "Linear: out_features must be positive, got -1");
  Linear<float> fresh(3, 2);
  CHECK_THROWS_WITH(
      fresh.backward(Tensor<float>({4, 2})),
      "Linear::backward: called before forward, or after a forward under NoGradGuard");
  layer.forward(Tensor<float>({4, 784}));
  CHECK_THROWS_WITH(
      layer.backward(Tensor<float>({4, 9})),
      "Linear::backward: grad_output has shape [4, 9], expected the output's shape [4, 10]");
}

TEST_CASE("NoGradGuard: Linear reads x in place for the same bits, then refuses backward",
          "[linear][no_grad]") {
  Generator gen(3);
  Linear<float> layer(97, 65, true, gen);  // k = 97: our GEMM kernel where it is built
  const Tensor<float> x1 = Tensor<float>::randn({33, 97}, gen);
  const Tensor<float> x2 = Tensor<float>::randn({33, 97}, gen);
  const Tensor<float> dy = Tensor<float>::randn({33, 65}, gen);
  const Tensor<float> want = layer.forward(x2);
  layer.forward(x1);  // the saved copy now holds x1, which the guarded forward must not read
  {
    NoGradGuard no_grad;
    CHECK(layer.forward(x2).vector() == want.vector());
    CHECK_THROWS_WITH(layer.backward(dy),
                      "Linear::backward: called before forward, or after a "
                      "forward under NoGradGuard");
  }
  // After the guard, training works as before: the gradients of a forward of x2.
  Linear<float> fresh = layer;
  layer.zero_grad();
  layer.forward(x2);
  layer.backward(dy);
  fresh.zero_grad(/*set_to_none=*/true);
  {
    NoGradGuard no_grad;
    fresh.forward(x1);
  }
  fresh.forward(x2);
  fresh.backward(dy);
  CHECK(fresh.grad_weight.vector() == layer.grad_weight.vector());
  CHECK(fresh.grad_bias.vector() == layer.grad_bias.vector());
}

TEST_CASE("NoGradGuard: a Linear fed its own output copies it anyway", "[linear][no_grad]") {
  // Both ways of the product writing over its input: Eigen's (k <= 16), which clears C
  // first, and our kernel's for more rows than kCopyRowsMax, which reads A in place.
  for (const Index features : {8, 40}) {
    const Index batch = features == 8 ? 24 : 300;
    Generator gen(4);
    Linear<double> layer(features, features, true, gen);
    Linear<double> twin = layer;
    const Tensor<double> x = Tensor<double>::randn({batch, features}, gen);
    const Tensor<double> want = twin.forward(Tensor<double>(twin.forward(x)));
    NoGradGuard no_grad;
    // layer.forward's argument is layer's own output buffer, which the product overwrites.
    const Tensor<double>& got = layer.forward(layer.forward(x));
    CHECK(got.vector() == want.vector());
  }
}

TEST_CASE("NoGradGuard: nests, restores the mode it found, and holds on its thread only",
          "[no_grad]") {
  CHECK(is_grad_enabled());
  {
    NoGradGuard outer;
    CHECK_FALSE(is_grad_enabled());
    {
      NoGradGuard inner;
      CHECK_FALSE(is_grad_enabled());
    }
    CHECK_FALSE(is_grad_enabled());
    bool other_thread = false;
    std::thread([&] { other_thread = is_grad_enabled(); }).join();
    CHECK(other_thread);
  }
  CHECK(is_grad_enabled());
}
