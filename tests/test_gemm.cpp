// SPDX-License-Identifier: MIT
// detail/gemm.hpp: the product (gemm_kernel.hpp's kernel, or Eigen's for depths <= 16 or > 2048
// and builds without AVX2) against a plain triple loop in long double, for every
// operand layout, edge sizes (1, every remainder of the kernels' row tiles and column panels,
// several depth and column blocks), packed panels, strided views, overwrite and accumulate.
#include <algorithm>
#include <backprop/detail/gemm.hpp>
#include <backprop/parallel.hpp>
#include <backprop/random.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

using namespace backprop;

namespace {

struct Shape {
  std::int64_t m, n, k;
};

// Fills an operand of `rows` x `cols` stored row- or column-major with `pad` unused
// elements after each stored row or column but the last (a strided view). The padding holds
// NaN, so a read of it that reaches a stored result poisons that result; the last row or
// column ends the allocation, so a vector read past it is out of bounds (AddressSanitizer).
template <typename T>
std::vector<T> make_operand(std::int64_t rows, std::int64_t cols, bool row_major, std::int64_t pad,
                            Generator& gen, detail::Operand<T>& op) {
  const std::int64_t outer = row_major ? rows : cols, inner = row_major ? cols : rows;
  std::vector<T> v(static_cast<std::size_t>(outer * (inner + pad) - pad), T(NAN));
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i)
      v[std::size_t(o * (inner + pad) + i)] = static_cast<T>(gen.uniform() * 2 - 1);
  op = {v.data(), inner + pad, row_major};
  return v;
}

template <typename T>
T at(const detail::Operand<T>& op, std::int64_t i, std::int64_t j) {
  return op.row_major ? op.data[i * op.stride + j] : op.data[i + j * op.stride];
}

template <typename T>
void check_shape(const Shape& s, bool a_rows, bool b_rows, bool accumulate, Generator& gen) {
  detail::Operand<T> a{}, b{};
  const std::vector<T> va = make_operand<T>(s.m, s.k, a_rows, 3, gen, a);
  const std::vector<T> vb = make_operand<T>(s.k, s.n, b_rows, 5, gen, b);
  const std::int64_t ldc = s.n + 2;
  std::vector<T> c(static_cast<std::size_t>(s.m * ldc));
  for (T& x : c) x = static_cast<T>(gen.uniform());
  const std::vector<T> c0 = c;
  if (accumulate)
    detail::gemm_add<T>(s.m, s.n, s.k, a, b, c.data(), ldc);
  else
    detail::gemm<T>(s.m, s.n, s.k, a, b, c.data(), ldc);
  // |error| <= k * eps * sum |a||b| (+ the same for the start value): the bound of any
  // summation order, with a factor 4 to spare.
  const double eps = std::numeric_limits<T>::epsilon();
  for (std::int64_t i = 0; i < s.m; ++i)
    for (std::int64_t j = 0; j < ldc; ++j) {
      const std::size_t idx = std::size_t(i * ldc + j);
      if (j >= s.n) {  // the padding of C is never written
        REQUIRE(c[idx] == c0[idx]);
        continue;
      }
      long double exact = accumulate ? c0[idx] : 0, scale = accumulate ? std::abs(c0[idx]) : 0;
      for (std::int64_t p = 0; p < s.k; ++p) {
        exact += static_cast<long double>(at(a, i, p)) * at(b, p, j);
        scale += std::abs(static_cast<long double>(at(a, i, p)) * at(b, p, j));
      }
      const double err = std::abs(static_cast<double>(c[idx] - exact));
      const double bound = 4 * double(s.k + 1) * eps * double(scale) + 1e-300;
      if (!(err <= bound)) {
        INFO("m " << s.m << " n " << s.n << " k " << s.k << " A " << (a_rows ? "row" : "col")
                  << "-major, B " << (b_rows ? "row" : "col") << "-major, accumulate " << accumulate
                  << ": C(" << i << ", " << j << ") = " << c[idx] << ", exact " << double(exact)
                  << ", error " << err << " > bound " << bound);
        REQUIRE(err <= bound);
      }
    }
}

template <typename T>
void check_all_shapes() {
  Generator gen(11);
  const std::vector<Shape> shapes = {{1, 1, 1},      {1, 7, 3},       {5, 1, 9},    {3, 5, 7},
                                     {64, 300, 100}, {64, 100, 300},  {99, 97, 65}, {13, 811, 17},
                                     {300, 49, 64},  {257, 33, 1031}, {2, 3, 5000}, {70, 2, 40000}};
  // Every column count up to two AVX-512 panels and a bit (1 .. 2 * 64 + 3), each with
  // another row remainder (m % 6) and depth, through our kernel (k > 16) and Eigen's; the
  // depth limits of our kernel (16 and 2048), either side.
  std::vector<Shape> all = shapes;
  for (std::int64_t n = 1; n <= 131; ++n) all.push_back({1 + n % 13, n, 65 + n % 5 * (n % 2)});
  for (std::int64_t n = 1; n <= 131; n += 7) all.push_back({1 + n % 7, n, 1 + n % 5});
  // Rows in whole AVX-512 vectors (C stored transposed: whole-vector and 2-vector tails).
  for (const Shape& s : {Shape{7, 20, 16},
                         {7, 20, 17},
                         {7, 20, 64},
                         {7, 20, 65},
                         {7, 20, 2048},
                         {7, 20, 2049},
                         {16, 70, 100},
                         {20, 33, 80},
                         {32, 9, 70},
                         {48, 130, 66}})
    all.push_back(s);
  // B's panels packed in AVX2 builds (pack_panels: rows spread over 128 KiB or more): dL/dx
  // of a 784 -> 300 layer, a partial last panel and row tile after packed panels, and a
  // product of one row tile, which reads B in place.
  for (const Shape& s : {Shape{64, 784, 300}, {50, 301, 600}, {5, 100, 400}}) all.push_back(s);
  for (const Shape& s : all)
    for (bool a_rows : {true, false})
      for (bool b_rows : {true, false})
        for (bool accumulate : {false, true}) check_shape<T>(s, a_rows, b_rows, accumulate, gen);
}

}  // namespace

TEST_CASE("gemm: matches a plain triple loop, float", "[gemm]") { check_all_shapes<float>(); }

TEST_CASE("gemm: matches a plain triple loop, double", "[gemm]") { check_all_shapes<double>(); }

#if BACKPROP_GEMM_KERNEL
// The transposed copies (copy_panels: whole 8 x 8 or 4 x 4 blocks in registers, the edges
// element by element, panel by panel) against the definition: every remainder of the blocks
// on both sides, more than one panel and a partial last one, sources whose row stride equals
// or exceeds their rows, and the zero padding to whole vectors.
template <typename T>
void check_copy_panels() {
  constexpr std::int64_t W = detail::Simd<T>::W, P = detail::kNV * W;
  for (std::int64_t rows = 1; rows <= 19; ++rows)
    for (std::int64_t cols = 1; cols <= 2 * P + 9; cols += 3)
      for (const std::int64_t stride : {rows, rows + 5}) {
        // src exactly as large as it must be (AddressSanitizer catches a read past it); out
        // larger than needed and full of stale values, which must not survive where the tiles
        // read (up to whole vectors).
        std::vector<T> src(static_cast<std::size_t>((cols - 1) * stride + rows));
        for (std::size_t i = 0; i < src.size(); ++i) src[i] = T(i) + T(0.5);
        std::vector<T> out(16384, T(-1));
        const detail::Panels<T> b = detail::copy_panels(rows, cols, src.data(), stride, out);
        INFO("rows " << rows << ", cols " << cols << ", stride " << stride);
        REQUIRE(b.data == out.data());
        REQUIRE(b.ld == P);
        REQUIRE(b.panel_stride == rows * P);
        REQUIRE(b.padded);
        REQUIRE(out.size() == static_cast<std::size_t>((cols + P - 1) / P * rows * P));
        CHECK(b.from(P).at(P) == b.at(2 * P));  // from(j) moves the origin, keeps the layout
        CHECK(b.at(P) == out.data() + rows * P);
        const std::int64_t padded_cols = (cols + W - 1) / W * W;  // what the tiles may read
        bool same = true;
        for (std::int64_t i = 0; i < rows; ++i)
          for (std::int64_t j = 0; j < padded_cols; ++j)  // B[i][j], in panel j / P
            same = same && out[static_cast<std::size_t>(j / P * rows * P + i * P + j % P)] ==
                               (j < cols ? src[static_cast<std::size_t>(j * stride + i)] : T(0));
        CHECK(same);
      }
}
TEST_CASE("gemm_kernel.hpp: the copies in panels are exact, edges and padding included", "[gemm]") {
  check_copy_panels<float>();
  check_copy_panels<double>();
}

// Our kernel sums each element of C over k in order whatever the tiling, so a block of a
// product equals the same part of the whole, bit for bit: detail::gemm cuts products through
// it into one part per thread, and relies on this for results that do not depend on the
// thread count. (Eigen's kernel does not promise it: column and row remainders take other
// code paths there, so its tiles are fixed by the shape.)
TEST_CASE("gemm_kernel.hpp: a product cut into row or column blocks equals the whole, bit for bit",
          "[gemm]") {
  Generator gen(5);
  for (const Shape& s : {Shape{64, 300, 784}, {64, 100, 300}, {300, 784, 65}, {37, 130, 2048}})
    for (bool a_rows : {true, false})
      for (bool b_rows : {true, false})
        for (bool accumulate : {false, true}) {
          detail::Operand<float> a{}, b{};
          const std::vector<float> va = make_operand<float>(s.m, s.k, a_rows, 1, gen, a);
          const std::vector<float> vb = make_operand<float>(s.k, s.n, b_rows, 2, gen, b);
          std::vector<float> start(static_cast<std::size_t>(s.m * s.n));
          for (float& x : start) x = static_cast<float>(gen.uniform());
          const auto product = [&](std::int64_t i0, std::int64_t m, std::int64_t j0, std::int64_t n,
                                   std::vector<float>& c) {
            // A's rows i0.., B's columns j0.., C's block (i0, j0)
            const detail::Operand<float> ai{a.data + (a_rows ? i0 * a.stride : i0), a.stride,
                                            a.row_major};
            const detail::Operand<float> bj{b.data + (b_rows ? j0 : j0 * b.stride), b.stride,
                                            b.row_major};
            float* cij = c.data() + i0 * s.n + j0;
            if (accumulate)
              detail::gemm_add<float>(m, n, s.k, ai, bj, cij, s.n);
            else
              detail::gemm<float>(m, n, s.k, ai, bj, cij, s.n);
          };
          std::vector<float> whole = start, by_rows = start, by_columns = start, one_tile = start;
          product(0, s.m, 0, s.n, whole);
          const std::int64_t i1 = s.m / 3, j1 = s.n / 3;  // uneven cuts, as a thread split
          product(0, i1, 0, s.n, by_rows);
          product(i1, s.m - i1, 0, s.n, by_rows);
          product(0, s.m, 0, j1, by_columns);
          product(0, s.m, j1, s.n - j1, by_columns);
          // One row tile reads B in place, the rest from packed panels (AVX2 builds, B
          // row-major; with both column-major this is a cut of C^T's columns).
          product(0, detail::kMR, 0, s.n, one_tile);
          product(detail::kMR, s.m - detail::kMR, 0, s.n, one_tile);
          INFO("m " << s.m << " n " << s.n << " k " << s.k << " A row-major " << a_rows
                    << ", B row-major " << b_rows << ", accumulate " << accumulate);
          CHECK(by_rows == whole);
          CHECK(by_columns == whole);
          CHECK(one_tile == whole);
        }
}
#endif

// Products of kParallelMinFlops and more are shared by the pool's threads: through our kernel
// cut into one part per thread, along rows (m >= n; 301: a partial row tile) or columns
// (partial last panels; y = x W^T's layout, A row-major and B column-major, with n < m <= 256:
// C^T's columns are the batch, cut in x^T's copy in panels, 250 x 60 and 200 x 20; in AVX2
// builds, B's panels packed in one slice per part), and through Eigen's in
// tiles fixed by the shape (k <= 16 or k > 2048, or any k in builds without AVX2; 50 MFLOP or more;
// more than 1024 rows: two row blocks). The result is bitwise the same for any thread count, and
// within the error bound of a plain loop.
template <typename T>
void check_threads(const std::vector<Shape>& shapes) {
  struct OneThreadAfter {
    ~OneThreadAfter() { set_num_threads(1); }
  } restore;
  Generator gen(17);
  for (const Shape& s : shapes) {
    REQUIRE(detail::parallel_product(s.m, s.n, s.k));
    for (int layout = 0; layout < 4; ++layout) {
      const bool a_rows = layout & 1, b_rows = layout & 2, accumulate = layout == 1 || layout == 2;
      detail::Operand<T> a{}, b{};
      const std::vector<T> va = make_operand<T>(s.m, s.k, a_rows, 1, gen, a);
      const std::vector<T> vb = make_operand<T>(s.k, s.n, b_rows, 2, gen, b);
      std::vector<T> start(static_cast<std::size_t>(s.m * s.n));
      for (T& x : start) x = static_cast<T>(gen.uniform());
      std::vector<T> one;
      for (int threads : {1, 2, 3, 4, 8}) {
        set_num_threads(threads);
        std::vector<T> c = start;
        if (accumulate)
          detail::gemm_add<T>(s.m, s.n, s.k, a, b, c.data(), s.n);
        else
          detail::gemm<T>(s.m, s.n, s.k, a, b, c.data(), s.n);
        INFO("m " << s.m << " n " << s.n << " k " << s.k << " A row-major " << a_rows
                  << ", B row-major " << b_rows << ", accumulate " << accumulate << ", " << threads
                  << " threads");
        if (threads == 1) {
          one = c;
          continue;
        }
        REQUIRE(c == one);
      }
      // The bound of check_shape, against a sum in long double.
      const long double eps = std::numeric_limits<T>::epsilon();
      long double worst = 0;  // largest error / bound
      for (std::int64_t i = 0; i < s.m; ++i)
        for (std::int64_t j = 0; j < s.n; ++j) {
          const std::size_t idx = std::size_t(i * s.n + j);
          long double exact = accumulate ? start[idx] : 0;
          long double scale = accumulate ? std::abs(start[idx]) : 0;
          for (std::int64_t p = 0; p < s.k; ++p) {
            const long double t = static_cast<long double>(at(a, i, p)) * at(b, p, j);
            exact += t;
            scale += std::abs(t);
          }
          const long double bound = 4 * (s.k + 1) * eps * scale + 1e-300L;
          worst = std::max(worst, std::abs(one[idx] - exact) / bound);
        }
      INFO("m " << s.m << " n " << s.n << " k " << s.k << " layout " << layout);
      CHECK(worst <= 1);
    }
  }
}

TEST_CASE("gemm: large products, shared between threads, are the same for 1, 2, 3, 4 and 8 threads",
          "[gemm][parallel]") {
  SECTION("float") {
    check_threads<float>({{600, 784, 64},
                          {61, 1000, 700},
                          {300, 70, 2500},
                          {1100, 1500, 16},
                          {600, 150, 300},
                          {301, 64, 128},
                          {64, 300, 100},
                          {250, 60, 300}});
  }
  // Double's panels are half as wide: other partial panels and part edges.
  SECTION("double") {
    check_threads<double>(
        {{301, 64, 128}, {64, 300, 100}, {90, 1001, 40}, {600, 150, 300}, {200, 20, 300}});
  }
}

TEST_CASE("gemm: k = 0 writes zeros or leaves C, m = 0 or n = 0 touches nothing", "[gemm]") {
  std::vector<float> c = {1, 2, 3, 4};
  const detail::Operand<float> none{nullptr, 1, true};
  detail::gemm_add<float>(2, 2, 0, none, none, c.data(), 2);
  CHECK(c == std::vector<float>{1, 2, 3, 4});
  detail::gemm<float>(2, 2, 0, none, none, c.data(), 2);
  CHECK(c == std::vector<float>{0, 0, 0, 0});
  detail::gemm<float>(0, 2, 3, none, none, nullptr, 2);
  detail::gemm<float>(2, 0, 3, none, none, c.data(), 2);
  CHECK(c == std::vector<float>{0, 0, 0, 0});
}
