// SPDX-License-Identifier: MIT
// Shared test helpers: tensor comparison that reports where and by how much it fails.
#pragma once

#include <backprop/module.hpp>
#include <backprop/random.hpp>
#include <backprop/tensor.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace backprop_test {

// One scalar parameter p (starting at 1) with a gradient the optimizer tests set by hand.
struct Scalar {
  backprop::Tensor<double> value{backprop::Tensor<double>::full({1}, 1.0)};
  backprop::Tensor<double> grad{backprop::Tensor<double>::zeros({1})};
  std::vector<backprop::Parameter<double>> params() { return {{"p", &value, &grad}}; }
};

// Passes when |actual - expected| <= atol + rtol * |expected| for every element. On failure
// the message gives the first bad index, both values and the max abs/rel errors.
template <typename T, typename U>
void check_close(const backprop::Tensor<T>& actual, const std::vector<U>& expected,
                 const backprop::Shape& expected_shape, double rtol, double atol,
                 const std::string& what) {
  INFO(what);
  REQUIRE(actual.shape() == expected_shape);
  REQUIRE(actual.numel() == static_cast<backprop::Index>(expected.size()));
  double max_abs = 0, max_rel = 0;
  long first_bad = -1;
  for (backprop::Index i = 0; i < actual.numel(); ++i) {
    const double a = static_cast<double>(actual[i]), e = static_cast<double>(expected[i]);
    const double err = std::abs(a - e);
    max_abs = std::max(max_abs, err);
    max_rel = std::max(max_rel, err / std::max(std::abs(e), 1e-30));
    if (!(err <= atol + rtol * std::abs(e)) && first_bad < 0) first_bad = static_cast<long>(i);
  }
  std::ostringstream msg;
  msg << what << ": max abs err " << max_abs << ", max rel err " << max_rel;
  if (first_bad >= 0)
    msg << "; first mismatch at flat index " << first_bad << ": expected "
        << static_cast<double>(expected[static_cast<std::size_t>(first_bad)]) << ", got "
        << static_cast<double>(actual[first_bad]);
  INFO(msg.str());
  CHECK(first_bad == -1);
}

template <typename T>
void check_close(const backprop::Tensor<T>& actual, const backprop::Tensor<T>& expected,
                 double rtol, double atol, const std::string& what) {
  check_close(actual, std::vector<T>(expected.begin(), expected.end()), expected.shape(), rtol,
              atol, what);
}

// NoGradGuard's contract for a module whose forward saves what backward reads (its input
// and output have the same shape). Under the guard, forward gives the same bits as without it,
// even when the saved state holds another input (x1) and when fed its own output; backward
// then throws `refused`. Afterwards, training gives the same gradients as a fresh copy's.
template <typename M, typename T>
void check_no_grad(const M& module, const backprop::Tensor<T>& x1, const backprop::Tensor<T>& x2,
                   const std::string& refused) {
  using backprop::Tensor;
  M twin = module, guarded = module;
  const Tensor<T> want = twin.forward(x2);
  const Tensor<T> want_twice = twin.forward(Tensor<T>(want));
  guarded.forward(x1);  // the saved state now holds x1, which the guarded forward must not read
  backprop::Generator gen(7);
  const Tensor<T> dy = Tensor<T>::randn(x2.shape(), gen);
  {
    backprop::NoGradGuard no_grad;
    const Tensor<T>& got = guarded.forward(x2);
    CHECK(got.shape() == want.shape());
    CHECK(got.vector() == want.vector());
    CHECK_THROWS_WITH(guarded.backward(dy), refused);
    const Tensor<T>& twice = guarded.forward(got);  // its own output as its input
    CHECK(twice.vector() == want_twice.vector());
  }
  // Training after the guard: the same input and gradient give the same bits.
  M fresh = module;
  fresh.zero_grad();
  guarded.zero_grad();
  fresh.forward(x2);
  const Tensor<T> dx_fresh = fresh.backward(dy);
  guarded.forward(x2);
  const Tensor<T> dx = guarded.backward(dy);
  CHECK(dx.vector() == dx_fresh.vector());
  const auto p = guarded.parameters(), q = fresh.parameters();
  REQUIRE(p.size() == q.size());
  for (std::size_t i = 0; i < p.size(); ++i) CHECK(p[i].grad->vector() == q[i].grad->vector());
}

}  // namespace backprop_test
