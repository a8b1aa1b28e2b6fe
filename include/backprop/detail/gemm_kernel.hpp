// SPDX-License-Identifier: MIT
// backprop: a GEMM kernel of our own for AVX2+FMA and AVX-512, for the products of a Linear
// layer at training batch sizes. gemm.hpp chooses it or Eigen's kernel (builds without AVX2,
// depths k <= 16 or k > 2048).
//
// Why: Eigen's kernel packs both operands into panels on every call. At a batch of 64 the
// weight matrix W is the big operand, and packing it (one read and one write of every weight
// per product) held the forward product near 66% of the FMA peak (AMD EPYC Zen 5, Eigen 3.4).
// This kernel copies nothing as big as W. It reads B (k x n, unit column stride) by panels
// of NV vectors, a few vectors per row: in place, or from the copy in panels that gemm.hpp
// makes of a transposed operand (copy_panels), or, in AVX2 builds, from a copy of one panel
// at a time when B's rows are far apart (pack_panel). It broadcasts A's elements one at a
// time from wherever they are, so A may have any strides. A tile of MR rows x NV vectors of
// C stays in registers over all of k:
//   for kk = 0 .. k-1:
//     b[v] = B[kk, j + v*W .. j + v*W + W)        NV vector loads (W lanes each)
//     for r < MR:  acc[r][v] += A[i + r, kk] * b[v]   one broadcast, NV FMAs
//   C[i .. i+MR, j .. j+NV*W) (+)= acc
// Each element of C is one chain of FMAs over kk = 0..k-1 whatever the tiling, so a block of
// C computed alone equals the same part of the whole product, bit for bit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#if (defined(__AVX2__) && defined(__FMA__)) || defined(__AVX512F__)
#include <immintrin.h>
#define BACKPROP_GEMM_KERNEL 1
#else
#define BACKPROP_GEMM_KERNEL 0
#endif

namespace backprop {
namespace detail {
#if BACKPROP_GEMM_KERNEL

// A matrix in memory with any strides: element (i, j) at data[i * rs + j * cs].
template <typename T>
struct Strided {
  T* data;
  std::int64_t rs, cs;
};

// The instruction set's vectors. Each set's kernel has its own inline namespace, so that the
// AVX2 and AVX-512 kernels never share a name. (Still build all translation units of a
// program with one -march: Eigen's templates and our callers differ between instruction sets.)
#if defined(__AVX512F__)
inline namespace avx512 {
template <typename T>
struct Simd;
template <>
struct Simd<float> {
  using V = __m512;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V broadcast(float x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
};
template <>
struct Simd<double> {
  using V = __m512d;
  static constexpr int W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V broadcast(double x) { return _mm512_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
};
// 32 vector registers: 6 x 4 accumulators, 4 of B, 1 broadcast.
constexpr int kMR = 6, kNV = 4;
// B's panels are read in place (see pack_panel).
constexpr bool kPackPanels = false;
#else
inline namespace avx2 {
template <typename T>
struct Simd;
template <>
struct Simd<float> {
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V broadcast(float x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
};
template <>
struct Simd<double> {
  using V = __m256d;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V broadcast(double x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
};
// 16 vector registers: 6 x 2 accumulators, 2 of B, 1 broadcast.
constexpr int kMR = 6, kNV = 2;
// B's panels are packed when their rows spread over many pages (see pack_panel).
constexpr bool kPackPanels = true;
#endif

// The 8 x 8 floats (4 x 4 doubles) at src, rows `ss` apart, transposed into dst, rows `ds`
// apart, in registers. The standard sequence: interleave pairs of rows, then pairs of pairs,
// then swap 128-bit halves (the comments follow row i = [i0 .. i7]).
inline void transpose_block(const float* src, std::int64_t ss, float* dst, std::int64_t ds) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // 00 10 01 11 | 04 14 05 15
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // 02 12 03 13 | 06 16 07 17
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);          // 00 10 20 30 | 04 14 24 34
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);      // 01 11 21 31 | 05 15 25 35
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);  // 02 12 22 32 | 06 16 26 36
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);  // 03 13 23 33 | 07 17 27 37
  }
  for (int j = 0; j < 4; ++j) {
    _mm256_storeu_ps(dst + j * ds, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));  // column j
    _mm256_storeu_ps(dst + (j + 4) * ds, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
  }
}
inline void transpose_block(const double* src, std::int64_t ss, double* dst, std::int64_t ds) {
  __m256d r[4];
  for (int i = 0; i < 4; ++i) r[i] = _mm256_loadu_pd(src + i * ss);
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]);  // 00 10 | 02 12
  const __m256d t1 = _mm256_unpackhi_pd(r[0], r[1]);  // 01 11 | 03 13
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]);  // 20 30 | 22 32
  const __m256d t3 = _mm256_unpackhi_pd(r[2], r[3]);  // 21 31 | 23 33
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + ds, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * ds, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * ds, _mm256_permute2f128_pd(t1, t3, 0x31));
}

// A tile of C^T (c.rs == 1: its R rows are R adjacent columns of C), as the forward product
// y = x W^T computes it (gemm.hpp): the accumulators go through a block of memory in 8 x 8
// blocks (4 x 4 for double) of transpose_block, so that each of C's rows receives its R
// elements in one or two moves rather than R stores `ldc` apart. Storing element by element
// made that product 5-12% slower than the same product stored row-major (AMD EPYC Zen 5).
template <typename T, typename V, std::size_t R, std::size_t NV>
inline void store_transposed(const V (&acc)[R][NV], const Strided<T>& c, std::int64_t cols,
                             bool accumulate) {
  constexpr std::size_t W = Simd<T>::W, B = 32 / sizeof(T);  // B x B: transpose_block's block
  constexpr std::size_t RB = (R + B - 1) / B * B;            // R rounded up to whole blocks
  alignas(64) T tile[RB][NV * W];
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < NV; ++v) Simd<T>::store(&tile[r][v * W], acc[r][v]);
  for (std::size_t r = R; r < RB; ++r) std::fill(tile[r], tile[r] + NV * W, T(0));  // never stored
  alignas(32) T t[B][B];  // t[j][r] = tile[r0 + r][j0 + j]
  const auto n = static_cast<std::size_t>(cols);
  for (std::size_t j0 = 0; j0 < n; j0 += B)
    for (std::size_t r0 = 0; r0 < R; r0 += B) {
      transpose_block(&tile[r0][j0], NV * W, &t[0][0], B);
      const std::size_t rows = std::min(B, R - r0);
      for (std::size_t j = 0; j < std::min(B, n - j0); ++j) {
        T* out = c.data + static_cast<std::int64_t>(j0 + j) * c.cs + static_cast<std::int64_t>(r0);
        for (std::size_t r = 0; r < rows; ++r) out[r] = accumulate ? out[r] + t[j][r] : t[j][r];
      }
    }
}

// One tile: C[0..R, 0..NV*W) (+)= A[0..R, 0..k) B[0..k, 0..NV*W), of which the first `cols`
// columns are stored. Each of B's rows has NV*W readable elements (tail_panel pads the last
// panel's rows where they are shorter).
template <typename T, int R, int NV>
inline void gemm_tile(std::int64_t k, const Strided<const T>& a, const T* b, std::int64_t ldb,
                      const Strided<T>& c, std::int64_t cols, bool accumulate) {
  using S = Simd<T>;
  using V = typename S::V;
  constexpr int W = S::W;
  constexpr std::size_t rows = R, vectors = NV, lanes_n = NV * W;  // array bounds
  V acc[rows][vectors];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) acc[r][v] = S::zero();
  }
  // One k step per iteration, never unrolled: clang 14 unrolled this loop, and the copies'
  // interleaved registers spilled accumulators to the stack on every step. On AMD EPYC Zen 4
  // that ran the AVX-512 products at 47-57% of the FMA peak; not unrolled, at 76-95%.
#if defined(__GNUC__)
#pragma GCC unroll 1
#endif
  for (std::int64_t kk = 0; kk < k; ++kk) {
    const T* bk = b + kk * ldb;        // B's row kk
    const T* ak = a.data + kk * a.cs;  // A's column kk
    V bv[vectors];
    for (int v = 0; v < NV; ++v) bv[v] = S::load(bk + v * W);
    for (int r = 0; r < R; ++r) {
      const V ar = S::broadcast(ak[r * a.rs]);
      for (int v = 0; v < NV; ++v) acc[r][v] = S::fma(ar, bv[v], acc[r][v]);
    }
  }
  if (c.cs == 1 && cols == NV * W) {  // whole vectors, contiguous rows of C
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) {
        T* p = c.data + r * c.rs + v * W;
        S::store(p, accumulate ? S::add(S::load(p), acc[r][v]) : acc[r][v]);
      }
    return;
  }
  if (c.rs == 1) return store_transposed<T>(acc, c, cols, accumulate);
  alignas(64) T lanes[lanes_n];  // a partial tile: element by element
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) S::store(lanes + v * W, acc[r][v]);
    T* row = c.data + r * c.rs;
    for (std::int64_t j = 0; j < cols; ++j) {
      T& out = row[j * c.cs];
      out = accumulate ? out + lanes[j] : lanes[j];
    }
  }
}

// The last rows of a panel, fewer than kMR: one tile of `rows` rows. The row count is a
// template argument (so that the accumulators are registers), found by counting down.
template <typename T, int NV, int R = kMR - 1>
inline void gemm_last_rows(std::int64_t rows, std::int64_t k, const Strided<const T>& a, const T* b,
                           std::int64_t ldb, const Strided<T>& c, std::int64_t cols,
                           bool accumulate) {
  if constexpr (R > 0) {
    if (rows < R) return gemm_last_rows<T, NV, R - 1>(rows, k, a, b, ldb, c, cols, accumulate);
    gemm_tile<T, R, NV>(k, a, b, ldb, c, cols, accumulate);
  }
}

// Every row tile of one panel of C's columns, NV vectors wide.
template <typename T, int NV>
inline void gemm_panel(std::int64_t m, std::int64_t k, const Strided<const T>& a, const T* b,
                       std::int64_t ldb, const Strided<T>& c, std::int64_t cols, bool accumulate) {
  std::int64_t i = 0;
  for (; i + kMR <= m; i += kMR)
    gemm_tile<T, kMR, NV>(k, {a.data + i * a.rs, a.rs, a.cs}, b, ldb,
                          {c.data + i * c.rs, c.rs, c.cs}, cols, accumulate);
  if (i < m)
    gemm_last_rows<T, NV>(m - i, k, {a.data + i * a.rs, a.rs, a.cs}, b, ldb,
                          {c.data + i * c.rs, c.rs, c.cs}, cols, accumulate);
}

// The last panel, narrower than a full one: `vectors` (1..kNV) vectors, the last maybe partial.
template <typename T, int NV = kNV>
inline void gemm_narrow_panel(int vectors, std::int64_t m, std::int64_t k,
                              const Strided<const T>& a, const T* b, std::int64_t ldb,
                              const Strided<T>& c, std::int64_t cols, bool accumulate) {
  if constexpr (NV > 1)
    if (vectors < NV)
      return gemm_narrow_panel<T, NV - 1>(vectors, m, k, a, b, ldb, c, cols, accumulate);
  gemm_panel<T, NV>(m, k, a, b, ldb, c, cols, accumulate);
}

// Copies `rows` x `cols` elements at(i, j) into `out`, row-major, each row padded with zeros
// to whole vectors; returns the row stride. `out` keeps its capacity from call to call.
template <typename T, typename At>
inline std::int64_t copy_padded(std::int64_t rows, std::int64_t cols, const At& at,
                                std::vector<T>& out) {
  constexpr int W = Simd<T>::W;
  const std::int64_t ld = (cols + W - 1) / W * W;
  out.resize(static_cast<std::size_t>(rows * ld));
  for (std::int64_t i = 0; i < rows; ++i) {
    T* row = out.data() + i * ld;
    for (std::int64_t j = 0; j < cols; ++j) row[j] = at(i, j);
    std::fill(row + cols, row + ld, T(0));
  }
  return ld;
}

// B (k x n) as the tiles read it, in panels of P = kNV * W columns: element (kk, j) at
// data[j / P * panel_stride + kk * ld + j % P]. Read in place (panels_in_place), B's rows are
// contiguous: panel_stride = P, and ld is its row stride. Copied (copy_panels), each panel's
// k x P elements are contiguous (ld = P, panel_stride = k * P), and `padded`: each row may be
// read to n rounded up to whole vectors (zeros there).
template <typename T>
struct Panels {
  const T* data;
  std::int64_t ld, panel_stride;
  bool padded;
  // The panel that starts at column j (a multiple of P).
  const T* at(std::int64_t j) const { return data + j / (kNV * Simd<T>::W) * panel_stride; }
  // B's columns from j on (j a multiple of P), as a B of their own.
  Panels from(std::int64_t j) const { return {at(j), ld, panel_stride, padded}; }
};
template <typename T>
inline Panels<T> panels_in_place(const T* b, std::int64_t ldb) {
  return {b, ldb, kNV * Simd<T>::W, false};
}

// The transpose of src (cols x rows, row stride `stride`) copied as panels: B (rows x cols),
// B[i][j] = src[j * stride + i]. The copies of x^T and W^T (gemm.hpp) are such transposes.
// Element by element they cost about 8% of an inference pass at batch 256 (perf, AMD EPYC
// Zen 5), so whole blocks go through transpose_block, and only the edges element by element.
// Panel by panel (not one row-major copy of B), a tile walks its panel in address order, and
// the AVX2 build need not pack it again (pack_panels): in one process, the forward products of
// the reference models at batches 64 and 256 all ran faster with AVX2 (1.01-1.06x), and with
// AVX-512 0.99-1.02x (the 100 -> 10 layer's 0.93-0.95x, under 1 us), than from one row-major
// copy (AMD EPYC Zen 4; docs/benchmarks.md).
template <typename T>
inline Panels<T> copy_panels(std::int64_t rows, std::int64_t cols, const T* src,
                             std::int64_t stride, std::vector<T>& out) {
  constexpr auto kB = static_cast<std::int64_t>(32 / sizeof(T));  // a block: 256-bit rows
  constexpr int W = Simd<T>::W, P = kNV * W;
  static_assert(P % kB == 0, "a block's kB columns must lie in one panel");
  const std::int64_t panels = (cols + P - 1) / P, padded_cols = (cols + W - 1) / W * W;
  out.resize(static_cast<std::size_t>(panels * rows * P));
  T* const o = out.data();
  const std::int64_t rows_b = rows / kB * kB, cols_b = cols / kB * kB;
  for (std::int64_t i = 0; i < rows_b; i += kB)
    for (std::int64_t j = 0; j < cols_b; j += kB)  // kB columns from j, in one panel
      transpose_block(src + j * stride + i, stride, o + j / P * rows * P + i * P + j % P, P);
  // What no block covered, column by column: the last columns of the rows in blocks, then
  // the last rows; zeros after column `cols`, up to whole vectors.
  const auto edge = [&](std::int64_t i0, std::int64_t i1, std::int64_t j0) {
    for (std::int64_t j = j0; j < padded_cols; ++j) {
      T* const column = o + j / P * rows * P + j % P;  // B[i][j] at column[i * P]
      for (std::int64_t i = i0; i < i1; ++i) column[i * P] = j < cols ? src[j * stride + i] : T(0);
    }
  };
  edge(0, rows_b, cols_b);
  edge(rows_b, rows, 0);
  return {o, P, rows * P, true};
}

// B's last panel, the columns after the last full panel (fewer than kNV vectors): in place
// if its vectors may be read whole (with b.padded, each row of B may be read up to n rounded
// up to whole vectors; what the padding holds reaches only columns that are not stored), else
// copied with zeros after its last column into this thread's buffer, which keeps its capacity.
template <typename T>
struct TailPanel {
  const T* data;
  std::int64_t ld;
};
template <typename T>
inline TailPanel<T> tail_panel(std::int64_t n, std::int64_t k, const Panels<T>& b) {
  constexpr int W = Simd<T>::W, P = kNV * W;  // P: a full panel's columns
  const std::int64_t full = n / P * P, tail = n - full;
  const T* tail_b = b.at(full);
  if (tail == 0 || tail % W == 0 || b.padded) return {tail_b, b.ld};
  thread_local std::vector<T> tail_copy;
  const std::int64_t ld = copy_padded(
      k, tail, [&](std::int64_t kk, std::int64_t j) { return tail_b[kk * b.ld + j]; }, tail_copy);
  return {tail_copy.data(), ld};
}

// Packing B's panels. Each row tile walks its panel of B, k rows ldb apart, from top to
// bottom. When those rows spread over kPackMinBytes or more, 32 pages of 4 KiB (about half
// the first-level data TLB of an AMD Zen 3 or Zen 4, which A's and C's pages share), the
// walks miss that TLB (inferred from the speed-up below: the VMs measured count no TLB
// events; below the threshold, packing measured 0.90-1.15x, no consistent gain), and the AVX2
// tile has only 12 FMAs (6 cycles) per row of B to hide each miss. So the AVX2
// build copies each such panel once into `pack`, k x P contiguous elements, for all its row
// tiles, as BLAS libraries pack B (Goto and van de Geijn, "Anatomy of high-performance
// matrix multiplication", 2008, on the TLB). The reference models' products at a batch of 64
// ran 1.13x faster in all (up to 1.25x each), at 256 1.32x (AMD EPYC Zen 4, x86-64-v3
// build; docs/benchmarks.md). The AVX-512 tile spends 4x as long on each row on a Zen 4 (2x
// on a Zen 5, not measured); there packing gained nothing in all (0.98x at a batch of 64, 1.02x at
// 256; dL/dx 6-7% slower at 64), so the AVX-512 build reads B in place. The copy moves values only:
// each element of C is the same chain of FMAs. (The forward's B, a copy_panels copy, has its
// panels contiguous already: ld == P.)
inline constexpr std::int64_t kPackMinBytes = 128 * 1024;
template <typename T>
inline bool pack_panels(std::int64_t k, std::int64_t ldb) {
  constexpr int P = kNV * Simd<T>::W;
  // ldb == P: the panel is contiguous already (B as wide as one panel, or copy_panels).
  return kPackPanels && ldb > P && k * ldb * std::int64_t(sizeof(T)) >= kPackMinBytes;
}
template <typename T>
inline void pack_panel(std::int64_t k, const T* b, std::int64_t ldb, T* pack) {
  constexpr int W = Simd<T>::W, P = kNV * W;
  for (std::int64_t kk = 0; kk < k; ++kk)
    for (int v = 0; v < kNV; ++v)
      Simd<T>::store(pack + kk * P + v * W, Simd<T>::load(b + kk * ldb + v * W));
}

// C (m x n) (+)= A (m x k) B (k x n); B is read by panels, A and C may have any strides;
// `tail` is tail_panel(n, ...) of the same B. One copy of the tail (k x fewer than P
// elements) serves all row tiles, and all the parts that threads compute. With `pack` (k x P
// elements, when pack_panels(k, b.ld)), each full panel that more than one row tile reads is
// packed there first.
template <typename T>
inline void gemm_direct(std::int64_t m, std::int64_t n, std::int64_t k, const Strided<const T>& a,
                        const Panels<T>& b, const TailPanel<T>& tail_b, const Strided<T>& c,
                        bool accumulate, T* pack = nullptr) {
  constexpr int W = Simd<T>::W, P = kNV * W;
  const std::int64_t full = n / P * P, tail = n - full;
  for (std::int64_t j = 0; j < full; j += P) {
    const Strided<T> cj{c.data + j * c.cs, c.rs, c.cs};
    if (pack && m > kMR) {
      pack_panel(k, b.at(j), b.ld, pack);
      gemm_panel<T, kNV>(m, k, a, pack, P, cj, P, accumulate);
    } else {
      gemm_panel<T, kNV>(m, k, a, b.at(j), b.ld, cj, P, accumulate);
    }
  }
  if (tail > 0)
    gemm_narrow_panel<T>(static_cast<int>((tail + W - 1) / W), m, k, a, tail_b.data, tail_b.ld,
                         {c.data + full * c.cs, c.rs, c.cs}, tail, accumulate);
}

}  // namespace avx512 / avx2
#endif  // BACKPROP_GEMM_KERNEL
}  // namespace detail
}  // namespace backprop
