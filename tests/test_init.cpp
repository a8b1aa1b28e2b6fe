// SPDX-License-Identifier: MIT
// init: PyTorch's fan and gain rules exactly, and the distributions by their sample mean,
// standard deviation and range over 200000 draws.
#include <backprop/init.hpp>
#include <backprop/linear.hpp>
#include <catch2/catch.hpp>
#include <cmath>

using namespace backprop;

TEST_CASE("init: calculate_gain and the fans, as torch.nn.init", "[init]") {
  CHECK(init::calculate_gain("linear") == 1.0);
  CHECK(init::calculate_gain("conv2d") == 1.0);
  CHECK(init::calculate_gain("sigmoid") == 1.0);
  CHECK(init::calculate_gain("tanh") == 5.0 / 3);
  CHECK(init::calculate_gain("relu") == std::sqrt(2.0));
  CHECK(init::calculate_gain("leaky_relu") == std::sqrt(2.0 / (1 + 0.01 * 0.01)));  // default slope
  CHECK(init::calculate_gain("leaky_relu", 0.2) == std::sqrt(2.0 / 1.04));
  CHECK(init::calculate_gain("leaky_relu", 0.0) == std::sqrt(2.0));
  CHECK(init::calculate_gain("selu") == 0.75);
  CHECK_THROWS_WITH(init::calculate_gain("gelu"),
                    "init::calculate_gain: unsupported nonlinearity 'gelu'");

  const Tensor<float> linear = Tensor<float>::zeros({300, 784});  // (out, in)
  CHECK(init::fan_in(linear) == 784);
  CHECK(init::fan_out(linear) == 300);
  const Tensor<float> conv = Tensor<float>::zeros({8, 3, 5, 5});  // (out, in, kH, kW)
  CHECK(init::calculate_fan_in_and_fan_out(conv) == std::pair<Index, Index>{75, 200});
  Tensor<float> bias = Tensor<float>::zeros({10});
  CHECK_THROWS_WITH(init::fan_in(bias),
                    "init::calculate_fan_in_and_fan_out: fan in and fan out can not be computed "
                    "for a tensor with fewer than 2 dimensions, got shape [10]");
  CHECK_THROWS_WITH(init::kaiming_uniform_(bias), Catch::Contains("fewer than 2"));
  Tensor<float> w = Tensor<float>::zeros({3, 4});
  CHECK_THROWS_WITH(init::kaiming_normal_(w, 0, "fan_avg"),
                    "init::kaiming_normal_: mode must be 'fan_in' or 'fan_out', got 'fan_avg'");
}

TEST_CASE("init: constant_, zeros_, ones_", "[init]") {
  Tensor<double> t = Tensor<double>::zeros({2, 3});
  init::constant_(t, 0.25);
  CHECK(t == Tensor<double>::full({2, 3}, 0.25));
  init::ones_(t);
  CHECK(t == Tensor<double>::ones({2, 3}));
  CHECK(&init::zeros_(t) == &t);
  CHECK(t == Tensor<double>::zeros({2, 3}));
}

namespace {
// Sample mean, standard deviation, min and max, accumulated in double.
struct Stats {
  double mean = 0, std = 0, min = INFINITY, max = -INFINITY;
  template <typename T>
  explicit Stats(const Tensor<T>& t) {
    for (const T x : t) {
      mean += x;
      min = std::min(min, double(x));
      max = std::max(max, double(x));
    }
    mean /= double(t.numel());
    for (const T x : t) std += (x - mean) * (x - mean);
    std = std::sqrt(std / double(t.numel() - 1));
  }
};

// Tolerances from the sampling error of n = 200000 draws, 5 standard errors each (a
// correct sampler fails such a check with probability ~6e-7; the generator is seeded, so the
// test is deterministic anyway). For a distribution with standard deviation s:
//   SE(mean) = s / sqrt(n);
//   SE(sample std) ~ s * sqrt((kurtosis - 1) / (4 n)): kurtosis 3 for a normal (s / sqrt(2n)),
//   9/5 for a uniform (s * sqrt(0.2 / n)).
constexpr double n_draws = 200000, k_se = 5;
void check_uniform(const Stats& st, double bound) {
  const double s = bound / std::sqrt(3.0);
  CHECK(st.min >= -bound);
  CHECK(st.max <= bound);
  CHECK(st.min < -bound * 0.999);  // the draws reach both ends
  CHECK(st.max > bound * 0.999);
  CHECK(std::abs(st.mean) <= k_se * s / std::sqrt(n_draws));
  CHECK(std::abs(st.std - s) <= k_se * s * std::sqrt(0.2 / n_draws));
}
void check_normal(const Stats& st, double mean, double s) {
  CHECK(std::abs(st.mean - mean) <= k_se * s / std::sqrt(n_draws));
  CHECK(std::abs(st.std - s) <= k_se * s / std::sqrt(2 * n_draws));
}
}  // namespace

TEST_CASE("init: kaiming and xavier draw from the stated distributions", "[init]") {
  Generator gen(3);
  Tensor<double> w = Tensor<double>::zeros({400, 500});  // fan_in 500, fan_out 400
  SECTION("kaiming_uniform_: bound = sqrt(3) gain / sqrt(fan)") {
    init::kaiming_uniform_(w, 0, "fan_in", "leaky_relu", gen);  // gain sqrt(2)
    check_uniform(Stats(w), std::sqrt(6.0 / 500));
    init::kaiming_uniform_(w, 0, "fan_out", "relu", gen);
    check_uniform(Stats(w), std::sqrt(6.0 / 400));
  }
  SECTION("kaiming_normal_: std = gain / sqrt(fan)") {
    init::kaiming_normal_(w, 0.2, "fan_out", "leaky_relu", gen);
    check_normal(Stats(w), 0, std::sqrt(2.0 / 1.04) / std::sqrt(400.0));
  }
  SECTION("xavier_uniform_ and xavier_normal_: std = gain sqrt(2 / (fan_in + fan_out))") {
    init::xavier_uniform_(w, 5.0 / 3, gen);
    check_uniform(Stats(w), std::sqrt(3.0) * 5.0 / 3 * std::sqrt(2.0 / 900));
    init::xavier_normal_(w, 1.0, gen);
    check_normal(Stats(w), 0, std::sqrt(2.0 / 900));
  }
  SECTION("uniform_ and normal_") {
    Tensor<float> f = Tensor<float>::zeros({200000});
    init::uniform_(f, -2, 2, gen);
    check_uniform(Stats(f), 2.0);
    init::normal_(f, 1.5, 0.5, gen);
    check_normal(Stats(f), 1.5, 0.5);
  }
}

TEST_CASE("init: Linear's default is kaiming_uniform_(a = sqrt(5)), from the same generator",
          "[init]") {
  // gain = sqrt(2 / (1 + 5)), bound = sqrt(3) * gain / sqrt(fan_in) = 1 / sqrt(fan_in).
  manual_seed(12);
  Linear<double> fc(7, 3);
  manual_seed(12);
  Tensor<double> w = Tensor<double>::zeros({3, 7});
  init::kaiming_uniform_(w, std::sqrt(5.0));  // default_generator(), as Linear
  for (Index i = 0; i < w.numel(); ++i) CHECK(w[i] == Approx(fc.weight[i]).epsilon(1e-15));
}
