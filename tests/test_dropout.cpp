// SPDX-License-Identifier: MIT
// Dropout: gradient check with a fixed mask, eval/p=0/p=1, the mask's statistics and
// reproducibility, backward = dy * mask, misuse.
// (PyTorch parity with a fixed mask: test_parity_layers.cpp.)
#include <backprop/dropout.hpp>
#include <backprop/gradcheck.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

using namespace backprop;

namespace {
// Dropout whose generator is reseeded before every forward, so that each of gradcheck's
// forwards draws the same mask: the finite differences then see one fixed function.
struct FixedMaskDropout : Module<double> {
  Generator gen;
  Dropout<double> dropout;
  std::uint64_t seed;
  FixedMaskDropout(double p, std::uint64_t s) : dropout(p, gen), seed(s) {}
  const Tensor<double>& forward(const Tensor<double>& x) override {
    gen.manual_seed(seed);
    return dropout.forward(x);
  }
  const Tensor<double>& backward(const Tensor<double>& dy) override { return dropout.backward(dy); }
};
}  // namespace

TEST_CASE("Dropout: gradcheck with a fixed mask", "[dropout][gradcheck]") {
  Generator gen(20);
  const Tensor<double> x = Tensor<double>::randn({5, 7}, gen);
  for (double p : {0.0, 0.3, 0.5, 1.0}) {
    FixedMaskDropout m(p, 11);
    const GradcheckResult r = gradcheck(m, x);  // torch gradcheck tolerances (GradcheckOptions)
    INFO("p = " << p << "\n" << r.failures);
    CHECK(r.ok);
    CHECK(r.checked == 35);
  }
  FixedMaskDropout m(0.5, 11);
  m.dropout.eval();
  const GradcheckResult r = gradcheck(m, x);
  CHECK(r.ok);
}

TEST_CASE("Dropout: backward multiplies by the saved mask, and accumulates nothing", "[dropout]") {
  Generator gen(21);
  Dropout<float> drop(0.25, gen);
  const Tensor<float> x = Tensor<float>::randn({4, 9}, gen);
  const Tensor<float> dy = Tensor<float>::randn({4, 9}, gen);
  const Tensor<float> y = drop.forward(x);
  const Tensor<float> dx = drop.backward(dy);
  for (Index i = 0; i < x.numel(); ++i) {
    CHECK(y[i] == x[i] * drop.mask()[i]);
    CHECK(dx[i] == dy[i] * drop.mask()[i]);
  }
  CHECK(drop.parameters().empty());
}

TEST_CASE("Dropout: keep rate within 5 standard errors, kept values scaled by exactly 1/(1-p)",
          "[dropout]") {
  for (double p : {0.1, 0.5, 0.8}) {
    Generator gen(22);
    Dropout<float> drop(p, gen);
    const Index n = 200 * 101;
    const Tensor<float> x = Tensor<float>::full({200, 101}, 3.0f);
    const Tensor<float>& y = drop.forward(x);
    const float scale = 1.0f / static_cast<float>(1 - p);  // as ATen: 1/(1-p) rounded once
    Index kept = 0;
    for (Index i = 0; i < n; ++i) {
      if (y[i] != 0.0f) {
        ++kept;
        REQUIRE(y[i] == 3.0f * scale);
        REQUIRE(drop.mask()[i] == scale);
      } else {
        REQUIRE(drop.mask()[i] == 0.0f);
      }
    }
    // kept ~ Binomial(n, 1 - p): mean n(1-p), standard error sqrt(n p (1-p)).
    const double se = std::sqrt(double(n) * p * (1 - p));
    INFO("p = " << p << ": kept " << kept << " of " << n);
    CHECK(std::abs(double(kept) - double(n) * (1 - p)) <= 5 * se);
  }
}

TEST_CASE("Dropout: the same seed gives the same mask, in float and double", "[dropout]") {
  Generator g1(23), g2(23), g3(23);
  Dropout<float> a(0.4, g1), b(0.4, g2);
  Dropout<double> c(0.4, g3);
  const Tensor<float> x = Tensor<float>::ones({6, 11});
  const Tensor<float> ya = a.forward(x);
  CHECK(b.forward(x) == ya);
  const Tensor<double>& yc = c.forward(Tensor<double>::ones({6, 11}));
  for (Index i = 0; i < x.numel(); ++i) CHECK((ya[i] == 0.0f) == (yc[i] == 0.0));
  // a second forward draws a new mask
  CHECK(a.forward(x) != ya);
  // the default generator, through manual_seed
  manual_seed(99);
  Dropout<float> d(0.4);
  const Tensor<float> yd = d.forward(x);
  manual_seed(99);
  CHECK(d.forward(x) == yd);
}

TEST_CASE("Dropout: eval and p = 0 are the identity and draw nothing, p = 1 gives x * 0",
          "[dropout]") {
  Generator gen(24);
  const Tensor<double> x({2, 3},
                         {1.0, -2.0, std::numeric_limits<double>::quiet_NaN(), 4.0, -0.0, 6.0});
  const Tensor<double> dy({2, 3}, {1, 2, 3, 4, 5, 6});
  Dropout<double> eval_drop(0.5, gen);
  eval_drop.eval();
  const Generator::State before = gen.state();
  Tensor<double> y = eval_drop.forward(x);
  CHECK(std::isnan(y[2]));
  y[2] = x[2];
  CHECK(std::equal(y.begin(), y.end(), x.begin(),
                   [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }));
  CHECK(eval_drop.backward(dy) == dy);
  Dropout<double> p0(0.0, gen);
  const Tensor<double> y0 = p0.forward(x);
  CHECK(y0[0] == 1.0);
  CHECK(std::isnan(y0[2]));
  CHECK(p0.backward(dy) == dy);
  CHECK(gen.state() == before);
  Dropout<double> p1(1.0, gen);
  const Tensor<double> y1 = p1.forward(x);
  CHECK(y1[0] == 0.0);
  CHECK(std::isnan(y1[2]));  // NaN * 0, as PyTorch
  CHECK(p1.backward(dy) == Tensor<double>::zeros({2, 3}));
}

TEST_CASE("Dropout: misuse throws naming the problem", "[dropout][errors]") {
  CHECK_THROWS_WITH(Dropout<float>(1.5),
                    "Dropout: dropout probability has to be between 0 and 1, but got 1.5");
  CHECK_THROWS_WITH(Dropout<float>(-0.1),
                    "Dropout: dropout probability has to be between 0 and 1, but got -0.1");
  Dropout<float> drop;
  drop.forward(Tensor<float>({3, 4}));
  CHECK_THROWS_WITH(
      drop.backward(Tensor<float>({4, 3})),
      "Dropout::backward: grad_output has shape [4, 3], expected the output's shape [3, 4]");
}
