// SPDX-License-Identifier: MIT
// LayerNorm: gradient checks with and without affine on 2-D and 3-D inputs, values,
// accumulation, state_dict names, misuse. (PyTorch parity: test_parity_layers.cpp.)
#include <backprop/gradcheck.hpp>
#include <backprop/layer_norm.hpp>
#include <backprop/linear.hpp>
#include <backprop/sequential.hpp>
#include <catch2/catch.hpp>
#include <cmath>

#include "test_helpers.hpp"

using namespace backprop;

// Tolerance for every gradcheck here: torch.autograd.gradcheck's double defaults,
// |analytic - numeric| <= 1e-5 + 1e-3 |numeric| with eps = 1e-6 (see GradcheckOptions).

TEST_CASE("LayerNorm: gradcheck on (N, C), with and without affine", "[layer_norm][gradcheck]") {
  Generator gen(30);
  for (bool affine : {true, false}) {
    LayerNorm<double> ln(7, 1e-5, affine);
    if (affine) {  // not 1/0, so every term of the backward matters
      ln.weight = Tensor<double>::rand({7}, gen, 0.5, 1.5);
      ln.bias = Tensor<double>::randn({7}, gen);
    }
    const Tensor<double> x = Tensor<double>::randn({5, 7}, gen, 0.5, 2.0);
    const GradcheckResult r = gradcheck(ln, x);
    INFO("affine = " << affine << "\n" << r.failures);
    CHECK(r.ok);
    CHECK(r.checked == 35 + (affine ? 14 : 0));
  }
}

TEST_CASE("LayerNorm: gradcheck behind a Linear, and on 3-D inputs", "[layer_norm][gradcheck]") {
  Generator gen(31);
  Sequential<double> net(Linear<double>(3, 7, true, gen), LayerNorm<double>(7));
  auto& ln = static_cast<LayerNorm<double>&>(net[1]);
  ln.weight = Tensor<double>::rand({7}, gen, 0.5, 1.5);
  ln.bias = Tensor<double>::randn({7}, gen);
  GradcheckResult r = gradcheck(net, Tensor<double>::randn({5, 3}, gen));
  INFO(r.failures);
  CHECK(r.ok);
  // (N, L, C) normalised over C, and over (L, C)
  LayerNorm<double> last(5);
  last.weight = Tensor<double>::rand({5}, gen, 0.5, 1.5);
  r = gradcheck(last, Tensor<double>::randn({3, 4, 5}, gen));
  INFO(r.failures);
  CHECK(r.ok);
  CHECK(r.checked == 60 + 10);
  LayerNorm<double> two(Shape{4, 5});
  two.weight = Tensor<double>::rand({4, 5}, gen, 0.5, 1.5);
  two.bias = Tensor<double>::randn({4, 5}, gen);
  r = gradcheck(two, Tensor<double>::randn({3, 4, 5}, gen));
  INFO(r.failures);
  CHECK(r.ok);
  CHECK(r.checked == 60 + 40);
}

TEST_CASE("LayerNorm: each row has mean 0 and biased variance 1 before the affine step",
          "[layer_norm]") {
  LayerNorm<double> ln(4, 1e-12);
  const Tensor<double>& y = ln.forward(Tensor<double>({2, 4}, {1, 2, 3, 4, -10, 0, 10, 20}));
  // row 0: mean 2.5, biased var 1.25
  CHECK(y.at({0, 0}) == Approx(-1.5 / std::sqrt(1.25)).epsilon(1e-9));
  CHECK(y.at({0, 3}) == Approx(1.5 / std::sqrt(1.25)).epsilon(1e-9));
  for (Index i = 0; i < 2; ++i) {
    double mean = 0, sq = 0;
    for (Index j = 0; j < 4; ++j) mean += y.at({i, j}) / 4;
    for (Index j = 0; j < 4; ++j) sq += (y.at({i, j}) - mean) * (y.at({i, j}) - mean) / 4;
    CHECK(mean == Approx(0.0).margin(1e-12));
    CHECK(sq == Approx(1.0).epsilon(1e-9));
  }
  // train() and eval() are the same computation
  const Tensor<double> y_train = y;
  ln.eval();
  CHECK(ln.forward(Tensor<double>({2, 4}, {1, 2, 3, 4, -10, 0, 10, 20})) == y_train);
}

TEST_CASE("LayerNorm: backward accumulates parameter gradients", "[layer_norm]") {
  Generator gen(32);
  LayerNorm<double> ln(3);
  const Tensor<double> x = Tensor<double>::randn({4, 3}, gen);
  const Tensor<double> dy = Tensor<double>::randn({4, 3}, gen);
  ln.forward(x);
  ln.backward(dy);
  const Tensor<double> once = ln.grad_weight;
  ln.backward(dy);
  for (Index i = 0; i < 3; ++i) CHECK(ln.grad_weight[i] == 2 * once[i]);
  ln.zero_grad();
  CHECK(ln.grad_bias == Tensor<double>::zeros({3}));
}

TEST_CASE("LayerNorm: state_dict names and shapes match PyTorch", "[layer_norm]") {
  LayerNorm<float> ln(Shape{4, 5});
  const auto entries = ln.state_dict();
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].name == "weight");
  CHECK(entries[1].name == "bias");
  CHECK(std::get<Tensor<float>*>(entries[0].tensor)->shape() == Shape{4, 5});
  CHECK(LayerNorm<float>(4, 1e-5, false).state_dict().empty());
}

TEST_CASE("LayerNorm: misuse throws naming the problem", "[layer_norm][errors]") {
  LayerNorm<float> ln(300);
  CHECK_THROWS_WITH(ln.forward(Tensor<float>({8, 299})),
                    "LayerNorm::forward: x has shape [8, 299], expected trailing dimensions "
                    "normalized_shape = [300]");
  CHECK_THROWS_WITH(LayerNorm<float>(Shape{4, 5}).forward(Tensor<float>({5})),
                    "LayerNorm::forward: x has shape [5], expected trailing dimensions "
                    "normalized_shape = [4, 5]");
  CHECK_THROWS_WITH(LayerNorm<float>(0), "LayerNorm: normalized_shape must be positive, got [0]");
  CHECK_THROWS_WITH(LayerNorm<float>(3, 0.0), "LayerNorm: eps must be positive, got 0");
  CHECK_THROWS_WITH(LayerNorm<float>(3).backward(Tensor<float>({2, 3})),
                    "LayerNorm::backward: called before forward, or after a forward under "
                    "NoGradGuard");
  ln.forward(Tensor<float>({2, 300}));
  CHECK_THROWS_WITH(ln.backward(Tensor<float>({3, 300})),
                    "LayerNorm::backward: grad_output has shape [3, 300], expected the output's "
                    "shape [2, 300]");
}

TEST_CASE("NoGradGuard: LayerNorm keeps no x_hat, gives the same bits, then refuses backward",
          "[layer_norm][no_grad]") {
  Generator gen(12);
  const Tensor<float> x1 = Tensor<float>::randn({9, 5, 37}, gen, 1.0, 2.0);
  const Tensor<float> x2 = Tensor<float>::randn({9, 5, 37}, gen, -1.0, 3.0);
  for (const bool affine : {true, false}) {
    INFO("affine " << affine);
    LayerNorm<float> ln(Shape{5, 37}, 1e-5, affine);
    if (affine) {
      ln.weight = Tensor<float>::randn({5, 37}, gen);
      ln.bias = Tensor<float>::randn({5, 37}, gen);
    }
    backprop_test::check_no_grad(
        ln, x1, x2,
        "LayerNorm::backward: called before forward, or after a forward under NoGradGuard");
  }
}
