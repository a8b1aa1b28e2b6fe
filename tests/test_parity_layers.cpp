// SPDX-License-Identifier: MIT
// Parity with PyTorch for issue #12's layers and losses: every output and gradient against
// torch 1.13's float64 and float32 results (tests/fixtures/parity_layers.hpp, written by
// tests/reference/make_fixtures_layers.py). Set BACKPROP_PRINT_ERRORS=1 to print the
// largest errors measured.
#include <algorithm>
#include <backprop/backprop.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "fixtures/parity_layers.hpp"
#include "test_helpers.hpp"

namespace fx = backprop_fixtures;
using namespace backprop;

namespace {

// Tolerances, |actual - expected| <= atol + rtol |expected| for every element:
// double: both sides compute the same formula from the same float32-exact inputs in double;
//   they differ by the rounding of a few operations and by libm (glibc's erf/tanh/exp/log1p
//   here, Sleef or glibc in ATen), each within 1-2 ulp. So an output is within ~10 ulp
//   (2e-15) of torch's relative to the size of the terms that form it: rtol 1e-12 leaves a
//   factor ~500 of headroom and still fails any formula difference (a wrong constant in
//   GELU's tanh form, the unbiased variance in LayerNorm, pos_weight in the wrong term,
//   mean over rows instead of elements: each off by > 1e-4 relative). atol 1e-14 covers
//   values formed by cancellation of O(1) terms, e.g. dtanh = 1 - y^2 at |x| = 12
//   (1.5e-10 with an absolute error of ~1e-16), or LayerNorm's dx whose three terms cancel.
// float: float32 on both sides (eps 6e-8); the same ~10 operations, plus LayerNorm's 1/std
//   and sums of up to 15 terms: relative differences of a few 1e-7, absolute of a few ulps
//   of the O(1) terms that cancel. rtol 1e-5 and atol 1e-6, as test_parity.cpp's Tol<float>.
template <typename T>
struct Tol;
template <>
struct Tol<double> {
  static constexpr double rtol = 1e-12, atol = 1e-14;
};
template <>
struct Tol<float> {
  static constexpr double rtol = 1e-5, atol = 1e-6;
};

template <typename T>
const std::vector<fx::NamedArray>& expected_all() {
  if constexpr (std::is_same_v<T, double>)
    return fx::layers::f64;
  else
    return fx::layers::f32;
}

const fx::Array& find(const std::vector<fx::NamedArray>& arrays, const std::string& name) {
  for (const fx::NamedArray& a : arrays)
    if (name == a.name) return a.array;
  FAIL("no fixture named " << name);
  throw;  // unreachable
}

template <typename T>
Tensor<T> input(const std::string& name) {
  const fx::Array& a = find(fx::layers::inputs, name);
  return Tensor<T>(Shape(a.shape.begin(), a.shape.end()),
                   std::vector<T>(a.values.begin(), a.values.end()));
}

// The largest errors seen, per precision, for the report.
template <typename T>
struct Measured {
  static inline double max_rel = 0, max_abs = 0, max_ratio = 0;
  static inline std::string worst_rel, worst_abs;
};

template <typename T>
void check(const Tensor<T>& actual, const std::string& name) {
  const fx::Array& e = find(expected_all<T>(), name);
  for (Index i = 0; i < actual.numel() && i < static_cast<Index>(e.values.size()); ++i) {
    const double a = actual[i], x = e.values[static_cast<std::size_t>(i)];
    const double err = std::abs(a - x);
    if (err > Measured<T>::max_abs) {
      Measured<T>::max_abs = err;
      Measured<T>::worst_abs = name + "[" + std::to_string(i) + "]";
    }
    if (std::abs(x) > 1e-6 && err / std::abs(x) > Measured<T>::max_rel) {
      Measured<T>::max_rel = err / std::abs(x);
      Measured<T>::worst_rel = name + "[" + std::to_string(i) + "]";
    }
    Measured<T>::max_ratio =
        std::max(Measured<T>::max_ratio, err / (Tol<T>::atol + Tol<T>::rtol * std::abs(x)));
  }
  backprop_test::check_close(actual, e.values, Shape(e.shape.begin(), e.shape.end()), Tol<T>::rtol,
                             Tol<T>::atol,
                             std::string(std::is_same_v<T, double> ? "double " : "float ") + name);
}

template <typename T>
void check_act(Module<T>& act, const std::string& name) {
  const Tensor<T> y = act.forward(input<T>("act.x"));
  check(y, "act." + name + ".y");
  check(act.backward(input<T>("act.dy")), "act." + name + ".dx");
}

const char* reduction_name(Reduction r) {
  return r == Reduction::Mean ? "mean" : r == Reduction::Sum ? "sum" : "none";
}

template <typename T, typename Target>
void check_loss(Loss<T, Target>& loss, const std::string& name, const Tensor<T>& x,
                const Target& target, const char* dy_name) {
  const std::string prefix = "loss." + name + "." + reduction_name(loss.reduction());
  check(loss.forward_tensor(x, target), prefix + ".loss");
  if (loss.reduction() == Reduction::None)
    check(loss.backward(input<T>(dy_name)), prefix + ".dx");
  else
    check(loss.backward(T(fx::layers::grad_output)), prefix + ".dx");
}

}  // namespace

TEMPLATE_TEST_CASE("Parity: Sigmoid, Tanh, GELU and LeakyReLU", "[parity][parity_layers]", double,
                   float) {
  using T = TestType;
  Sigmoid<T> sigmoid;
  Tanh<T> tanh;
  GELU<T> gelu, gelu_tanh("tanh");
  LeakyReLU<T> leaky02(0.2), leaky;
  check_act(sigmoid, "sigmoid");
  check_act(tanh, "tanh");
  check_act(gelu, "gelu");
  check_act(gelu_tanh, "gelu_tanh");
  check_act(leaky02, "leaky_relu_0.2");
  check_act(leaky, "leaky_relu");
}

TEMPLATE_TEST_CASE("Parity: LayerNorm with and without affine, 2-D and 3-D",
                   "[parity][parity_layers]", double, float) {
  using T = TestType;
  for (const char* tag : {"affine", "plain", "3d"}) {
    const std::string p = std::string("ln.") + tag;
    const bool affine = std::strcmp(tag, "plain") != 0;
    LayerNorm<T> ln =
        std::strcmp(tag, "3d") == 0 ? LayerNorm<T>(Shape{3, 4}) : LayerNorm<T>(7, 1e-5, affine);
    if (affine) {
      ln.weight = input<T>(p + ".weight");
      ln.bias = input<T>(p + ".bias");
    }
    check(ln.forward(input<T>(p + ".x")), p + ".y");
    check(ln.backward(input<T>(p + ".dy")), p + ".dx");
    if (affine) {
      check(ln.grad_weight, p + ".grad_weight");
      check(ln.grad_bias, p + ".grad_bias");
    }
  }
}

TEMPLATE_TEST_CASE("Parity: Dropout with the mask of a seed", "[parity][parity_layers][dropout]",
                   double, float) {
  using T = TestType;
  // The fixture applies ATen's dropout formula to the mask a Python port of our Generator
  // draws for the seed: this checks the scaling against torch and the mask against an
  // independent implementation of the documented draw (uniform double < 1 - p).
  for (const fx::layers::DropoutCase& c : fx::layers::dropout_cases) {
    Generator gen(c.seed);
    Dropout<T> drop(c.p, gen);
    check(drop.forward(input<T>("dropout.x")), std::string("dropout.") + c.name + ".y");
    check(drop.backward(input<T>("dropout.dy")), std::string("dropout.") + c.name + ".dx");
  }
}

TEMPLATE_TEST_CASE("Parity: MSELoss, L1Loss, BCEWithLogitsLoss, CrossEntropyLoss, every reduction",
                   "[parity][parity_layers]", double, float) {
  using T = TestType;
  const Tensor<T> x = input<T>("loss.x"), t = input<T>("loss.t");
  const Tensor<T> bx = input<T>("loss.bce_x"), bt = input<T>("loss.bce_t");
  const Tensor<T> cx = input<T>("loss.ce_x");
  const Tensor<double> labels_d = input<double>("loss.ce_target");
  Tensor<std::int64_t> labels({labels_d.numel()});
  for (Index i = 0; i < labels.numel(); ++i) labels[i] = static_cast<std::int64_t>(labels_d[i]);
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    MSELoss<T> mse(r);
    check_loss(mse, "mse", x, t, "loss.dy");
    L1Loss<T> l1(r);
    check_loss(l1, "l1", x, t, "loss.dy");
    BCEWithLogitsLoss<T> bce(r);
    check_loss(bce, "bce", bx, bt, "loss.dy");
    BCEWithLogitsLoss<T> bce_pw(r, input<T>("loss.pos_weight"));
    check_loss(bce_pw, "bce_pos_weight", bx, bt, "loss.dy");
    CrossEntropyLoss<T> ce(r);
    check_loss(ce, "ce", cx, labels, "loss.ce_dy");
  }
}

TEST_CASE("Parity: the largest errors measured (BACKPROP_PRINT_ERRORS=1 prints them)",
          "[parity][parity_layers]") {
  if (std::getenv("BACKPROP_PRINT_ERRORS"))
    std::printf(
        "parity_layers: double max rel %.3g at %s (|expected| > 1e-6), max abs %.3g at %s, "
        "max error/tolerance %.3g\n               float max rel %.3g at %s, max abs %.3g "
        "at %s, max error/tolerance %.3g\n",
        Measured<double>::max_rel, Measured<double>::worst_rel.c_str(), Measured<double>::max_abs,
        Measured<double>::worst_abs.c_str(), Measured<double>::max_ratio, Measured<float>::max_rel,
        Measured<float>::worst_rel.c_str(), Measured<float>::max_abs,
        Measured<float>::worst_abs.c_str(), Measured<float>::max_ratio);
  SUCCEED();
}
