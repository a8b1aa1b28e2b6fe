// SPDX-License-Identifier: MIT
// backprop: a seeded random generator whose numbers are the same bit for bit everywhere.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace backprop {

namespace detail {

// The std:: distributions differ between standard libraries, and std::log/std::cos may differ
// in the last bit between libms, so the few functions the generator needs are written here
// with +, -, *, / and explicit std::fma only: all correctly rounded by IEEE 754, and with no
// a*b+c left for a compiler to contract differently. (Not valid under -ffast-math.)

// splitmix64 (Steele, Lea and Flood; Vigna's reference code): advances state and returns
// its next output. Generator seeds its 256 state bits with it, and DataLoader derives each
// epoch's shuffle seed with it.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// sum_{k=0}^{n-1} x2^k * c_k by Horner, c_k = coef(k).
template <typename Coef>
double horner(double x2, int n, Coef coef) {
  double p = coef(n - 1);
  for (int k = n - 2; k >= 0; --k) p = std::fma(p, x2, coef(k));
  return p;
}

// Natural log of x > 0. x = m 2^e with m in [sqrt(1/2), sqrt(2)); then
// log m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m-1)/(m+1), |s| <= 0.172.
inline double det_log(double x) {
  int e = 0;
  double m = std::frexp(x, &e);  // exact; m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;  // exact
    e -= 1;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double p = horner(s * s, 12, [](int k) { return 1.0 / (2 * k + 1); });
  const double log_m = (2.0 * s) * p;
  return std::fma(static_cast<double>(e), 0.69314718055994530942, log_m);
}

// sin(x) and cos(x) for x in [0, pi/4] by Taylor series (error < 1e-17 there).
inline double det_sin_small(double x) {
  // sin x = x (1 - x^2/3! + x^4/5! - ...)
  const double p = horner(x * x, 10, [](int k) {
    double f = 1.0;
    for (int i = 2; i <= 2 * k + 1; ++i) f *= i;
    return (k % 2 ? -1.0 : 1.0) / f;
  });
  return x * p;
}
inline double det_cos_small(double x) {
  // cos x = 1 - x^2/2! + x^4/4! - ...
  return horner(x * x, 10, [](int k) {
    double f = 1.0;
    for (int i = 2; i <= 2 * k; ++i) f *= i;
    return (k % 2 ? -1.0 : 1.0) / f;
  });
}

// cos(2 pi t) for t in [0, 1): reduce to an octant, 2 pi t = k pi/4 + 2 pi f, f in [0, 1/8).
inline double det_cos_turns(double t) {
  constexpr double two_pi = 6.28318530717958647693;
  const int k = static_cast<int>(t * 8.0);  // t * 8 is exact
  const double f = t - k * 0.125;           // exact
  const double a = two_pi * f;              // angle in [0, pi/4)
  const double b = two_pi * (0.125 - f);    // pi/4 - a, in (0, pi/4]
  switch (k) {
    case 0:
      return det_cos_small(a);
    case 1:
      return det_sin_small(b);
    case 2:
      return -det_sin_small(a);
    case 3:
      return -det_cos_small(b);
    case 4:
      return -det_cos_small(a);
    case 5:
      return -det_sin_small(b);
    case 6:
      return det_sin_small(a);
    default:
      return det_cos_small(b);
  }
}

}  // namespace detail

/// A seeded pseudo-random generator: xoshiro256** (Blackman and Vigna), seeded by splitmix64.
/// Every value it gives depends only on the seed and the calls made, never on the compiler,
/// standard library or platform. Its state is four integers, so checkpoints can store it.
/// Example: Generator gen(42); float w = gen.uniform(-1.0f, 1.0f);
class Generator {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit Generator(std::uint64_t seed = 0) { manual_seed(seed); }

  void manual_seed(std::uint64_t seed) {
    // splitmix64 spreads any seed (even 0) over the 256 state bits.
    for (auto& s : state_) s = detail::splitmix64(seed);
  }

  const State& state() const { return state_; }
  void set_state(const State& state) { state_ = state; }

  /// 64 random bits.
  std::uint64_t next_u64() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform integer in [0, n), n > 0, without modulo bias (rejection sampling).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      const std::uint64_t r = next_u64();
      if (r >= threshold) return r % n;
    }
  }

  /// Uniform in [0, 1): the top 53 bits (double) or 24 bits (float) of one draw.
  template <typename T = double>
  T uniform() {
    if constexpr (sizeof(T) == sizeof(float)) {
      return static_cast<T>(next_u64() >> 40) * T(0x1.0p-24);
    } else {
      return static_cast<T>(next_u64() >> 11) * T(0x1.0p-53);
    }
  }

  /// Uniform in [low, high) (high itself only through rounding, as in torch.rand).
  template <typename T>
  T uniform(T low, T high) {
    return std::fma(high - low, uniform<T>(), low);
  }

  /// Normal(mean, std) by Box-Muller from two draws; the second value is discarded so that
  /// the state alone says what comes next.
  template <typename T>
  T normal(T mean = T(0), T std = T(1)) {
    const double u1 = 1.0 - uniform<double>();  // (0, 1]: log is finite
    const double u2 = uniform<double>();
    const double z = std::sqrt(-2.0 * detail::det_log(u1)) * detail::det_cos_turns(u2);
    return std::fma(std, static_cast<T>(z), mean);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  State state_{};
};

/// The process-wide generator that layers draw from (initial weights, dropout masks) when no
/// generator is given, as PyTorch's default generator. Seed it with manual_seed().
inline Generator& default_generator() {
  static Generator gen(0);
  return gen;
}
/// As torch.manual_seed(seed).
inline void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace backprop
