// SPDX-License-Identifier: MIT
// clip_grad_norm_ and clip_grad_value_: by hand, and against torch.nn.utils.clip_grad_norm_
// for norm_type 2, 1, 3, inf (tests/fixtures/parity_optim.hpp).
#include <backprop/clip_grad.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "fixtures/parity_optim.hpp"
#include "test_helpers.hpp"

using namespace backprop;
namespace fx = backprop_fixtures;

namespace {
template <typename T>
struct Params {
  std::vector<Tensor<T>> values, grads;
  explicit Params(const std::vector<fx::Array>& g) {
    for (const fx::Array& a : g) {
      const Shape shape(a.shape.begin(), a.shape.end());
      values.push_back(Tensor<T>::zeros(shape));
      grads.emplace_back(shape, std::vector<T>(a.values.begin(), a.values.end()));
    }
  }
  std::vector<Parameter<T>> list() {
    std::vector<Parameter<T>> out;
    for (std::size_t i = 0; i < values.size(); ++i)
      out.push_back({"p" + std::to_string(i), &values[i], &grads[i]});
    return out;
  }
};
}  // namespace

TEST_CASE("clip_grad_norm_: a 3-4-5 triangle by hand", "[clip_grad]") {
  Params<double> p({fx::Array{{2}, {3.0, 0.0}}, fx::Array{{1}, {-4.0}}});
  CHECK(clip_grad_norm_(p.list(), 10.0) == 5.0);  // returns the norm; no clipping ...
  CHECK(p.grads[0][0] == 3.0);                    // ... (the coefficient clamps to 1)
  CHECK(clip_grad_norm_(p.list(), 1.0) == 5.0);
  CHECK(p.grads[0][0] == Approx(3.0 / (5.0 + 1e-6)).epsilon(1e-15));  // max_norm / (total + 1e-6)
  CHECK(p.grads[1][0] == Approx(-4.0 / (5.0 + 1e-6)).epsilon(1e-15));
  Params<double> q({fx::Array{{2}, {3.0, 0.0}}, fx::Array{{1}, {-4.0}}});
  CHECK(clip_grad_norm_(q.list(), 1.0, INFINITY) == 4.0);
  CHECK(clip_grad_norm_(q.list(), 100.0, 1.0) == Approx(7.0 / (4.0 + 1e-6)).epsilon(1e-15));
  CHECK(clip_grad_norm_(std::vector<Parameter<double>>{}, 1.0) == 0.0);
  CHECK_THROWS_WITH(clip_grad_norm_(q.list(), 1.0, 0.0),
                    "clip_grad_norm_: norm_type must be > 0, got 0");
}

TEST_CASE("clip_grad_value_: clamps each element", "[clip_grad]") {
  Params<float> p({fx::Array{{4}, {-3.0, -0.5, 0.25, 2.0}}});
  clip_grad_value_(p.list(), 1.0);
  CHECK(p.grads[0] == Tensor<float>({4}, {-1.0f, -0.5f, 0.25f, 1.0f}));
  CHECK_THROWS_WITH(clip_grad_value_(p.list(), -1.0),
                    "clip_grad_value_: clip_value must be >= 0, got -1");
}

// Tolerances. double: rtol 1e-14; a sum of 25 squares, a sqrt and one division per element,
// in another order than ATen's reduction: a few ulps allowed. float: if ATen accumulated a
// float norm in float it would carry up to ~25 u = 1.5e-6 relative error that our double
// accumulator does not; rtol 2e-6 allows for that. Measured (clang 14, torch 1.13 on this
// machine): both precisions agree exactly (error 0: these tensors are small, and ATen's CPU
// norm accumulates float in double, as we do).
template <typename T>
void run_clip_parity(const std::vector<fx::ClipCase>& cases, double rtol, const char* type) {
  for (const fx::ClipCase& c : cases) {
    const std::string what = std::string(type) + " norm_type " + std::to_string(c.norm_type) +
                             " max_norm " + std::to_string(c.max_norm);
    Params<T> p(fx::optim::clip_grads);
    const T total = clip_grad_norm_(p.list(), c.max_norm, c.norm_type);
    backprop_test::check_close(Tensor<T>(Shape{}, std::vector<T>{total}),
                               std::vector<double>{c.total_norm}, Shape{}, rtol, 0.0,
                               what + " total norm");
    for (std::size_t i = 0; i < p.grads.size(); ++i) {
      const fx::Array& e = c.grads[i];
      backprop_test::check_close(p.grads[i], e.values, Shape(e.shape.begin(), e.shape.end()), rtol,
                                 0.0, what + " grad " + std::to_string(i));
    }
  }
}

TEST_CASE("Parity: clip_grad_norm_ against PyTorch", "[clip_grad][parity]") {
  REQUIRE(fx::optim::clip_f64.size() == 8);
  run_clip_parity<double>(fx::optim::clip_f64, 1e-14, "double");
  run_clip_parity<float>(fx::optim::clip_f32, 2e-6, "float");
}
