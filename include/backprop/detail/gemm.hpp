// SPDX-License-Identifier: MIT
// backprop: C (+)= A B on row-major data: through our kernel (gemm_kernel.hpp) in builds for
// AVX2+FMA or AVX-512, else through Eigen's GEMM kernel with packing buffers kept between
// calls. Large products are cut into parts of C that set_num_threads() threads share.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "gemm_kernel.hpp"
#include "thread_pool.hpp"

namespace backprop {
namespace detail {

// One operand of a product: a matrix in memory, row-major (element (i, j) at data[i * stride
// + j]) or column-major (at data[i + j * stride]). A transposed row-major block is the
// column-major view of the same memory.
template <typename T>
struct Operand {
  const T* data;
  std::int64_t stride;
  bool row_major;
};

// Threads. A product of at least kParallelMinFlops (2 m n k) is shared by the pool's threads
// (thread_pool.hpp); a smaller one runs whole on the caller. The result is bitwise the same
// for any number of threads:
//  - through our kernel (gemm_kernel.hpp) each element of C is one chain of FMAs over k,
//    wherever C is cut, so C is cut into one contiguous part per thread (run_parts,
//    thread_pool.hpp; one part while the pool runs alone): each thread runs one efficient
//    product over its part, and one thread runs the whole;
//  - Eigen's kernel sums the last rows of a block in another order than the others, so its
//    cut must not move with the thread count: tiles whose size depends on the shape alone
//    (at most kEigenColTiles blocks of columns x blocks of kEigenTileRows rows; few, since
//    Eigen packs both operands of each tile), each thread one contiguous run (run_tiles),
//    and only for products of kEigenParallelMinFlops or more.
// Why 2 MFLOP (about 10 us of one core): it splits every product of the reference models but
// their last layer's, and with it both trained 1.3-1.7x faster on 2 idle Zen 5 cores than on
// one (docs/benchmarks.md). Other thresholds were not compared with this design.
// Eigen's tiles cost one thread 8-19% of a dW (benchmarks.md), whatever the thread count, so
// through Eigen only products of kEigenParallelMinFlops or more are cut (as before session 7).
inline constexpr double kParallelMinFlops = 2e6, kEigenParallelMinFlops = 50e6;
inline constexpr std::int64_t kEigenTileRows = 1024, kEigenColTiles = 4;

inline bool parallel_product(std::int64_t m, std::int64_t n, std::int64_t k,
                             double min_flops = kParallelMinFlops) {
  return 2.0 * double(m) * double(n) * double(k) >= min_flops;
}

// Cuts C (m x n) into tiles of `rows` x `cols` (the last ones smaller) and calls
// tile(i, j, tile_m, tile_n) for each, on the pool's threads: one contiguous run of tiles per
// thread, the caller the first (as run_parts in thread_pool.hpp, for the same reason).
template <typename F>
void run_tiles(std::int64_t m, std::int64_t n, std::int64_t rows, std::int64_t cols, F& tile) {
  const std::int64_t col_tiles = (n + cols - 1) / cols;
  auto run = [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t t = begin; t < end; ++t) {
      const std::int64_t i = t / col_tiles * rows, j = t % col_tiles * cols;
      tile(i, j, std::min(rows, m - i), std::min(cols, n - j));
    }
  };
  run_parts((m + rows - 1) / rows * col_tiles, 1, run);
}

#if !EIGEN_VERSION_AT_LEAST(3, 4, 0)
#error "backprop needs Eigen 3.4 or later (detail/gemm.hpp calls its GEMM kernel)"
#endif

// Why not `c.noalias() = a * b`: for products this size, Eigen allocates its packing
// buffers (hundreds of kB) with malloc on every call, and glibc returns such blocks to the
// kernel and faults them back in; measured here, that made a forward pass 6x slower in
// some runs (2.1 ms instead of 0.32 ms), depending on the heap's history. So the buffers
// live in GemmBuffers, one set per thread, grown only when a product needs more, and the
// product runs Eigen's own kernel (internal::general_matrix_matrix_product, stable since
// Eigen 3.4) on them. The blocking sizes are those Eigen would choose itself.
template <typename T>
class GemmBuffers : public Eigen::internal::level3_blocking<T, T> {
 public:
  // For an m x n row-major result Eigen computes the transposed, column-major product, so
  // its blocks are those of an n x m result.
  void prepare(std::int64_t m, std::int64_t n, std::int64_t k) {
    Eigen::Index mc = n, nc = m, kc = k;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(kc, mc, nc, Eigen::Index(1));
    this->m_mc = mc;
    this->m_nc = nc;
    this->m_kc = kc;
    if (a_.size() < mc * kc) a_.resize(mc * kc);
    if (b_.size() < kc * nc) b_.resize(kc * nc);
    this->m_blockA = a_.data();
    this->m_blockB = b_.data();
  }

 private:
  Eigen::Matrix<T, Eigen::Dynamic, 1> a_, b_;  // aligned for SIMD
};

template <typename T>
GemmBuffers<T>& gemm_buffers() {
  thread_local GemmBuffers<T> buffers;
  return buffers;
}

template <typename T, int LhsOrder, int RhsOrder>
void gemm_eigen(std::int64_t m, std::int64_t n, std::int64_t k, const Operand<T>& a,
                const Operand<T>& b, T* c, std::int64_t ldc) {
  GemmBuffers<T>& buffers = gemm_buffers<T>();
  buffers.prepare(m, n, k);
  using Product =
      Eigen::internal::general_matrix_matrix_product<Eigen::Index, T, LhsOrder, false, T, RhsOrder,
                                                     false, Eigen::RowMajor, 1>;
  Product::run(m, n, k, a.data, a.stride, b.data, b.stride, c, 1, ldc, T(1), buffers);
}

#if BACKPROP_GEMM_KERNEL
// Where gemm_kernel.hpp's kernel runs (in builds for AVX2+FMA or AVX-512): float or double and
// a depth kKernelMinDepth < k <= kKernelMaxDepth. At k <= 16 each tile of ours stores its
// accumulators after a few FMAs, while Eigen's packing, (m + n) k elements, is cheap. At
// k = 64 (dW += dy^T x at a batch of 64) ours is within 6% of Eigen's whole product and
// faster than Eigen's cut in the fixed tiles that threads need (docs/benchmarks.md). Beyond
// 2048 our panel of B (k rows of a few vectors) outgrows the L2 cache, and Eigen blocks
// over k. The choice depends on k alone, which the threads never
// cut: every part takes the same kernel as the whole product would.
inline constexpr std::int64_t kKernelMinDepth = 16, kKernelMaxDepth = 2048;
template <typename T>
inline constexpr bool kKernelType = std::is_same_v<T, float> || std::is_same_v<T, double>;

// gemm_direct (gemm_kernel.hpp), on the pool's threads when the product is large: C is cut
// along its longer side (which also cuts the larger of A and B), into whole row tiles or
// whole panels of columns, so that every part runs at the speed of the whole. B's partial
// last panel, unless B is padded, is copied once, here on the caller (a helper's copy would
// allocate whenever it first ran that part, deep into training), and shared by the parts;
// for the same reason the caller sizes the buffer where each part packs B's panels
// (pack_panels), one slice per part.
template <typename T>
void gemm_direct_parallel(std::int64_t m, std::int64_t n, std::int64_t k, const Strided<const T>& a,
                          const Panels<T>& b, const Strided<T>& c, bool accumulate) {
  const TailPanel<T> tail = tail_panel(n, k, b);
  const int threads = thread_pool().parts();  // 1 while the pool runs alone
  const bool parallel = parallel_product(m, n, k) && threads > 1;
  const std::int64_t slice = pack_panels<T>(k, b.ld) ? k * kNV * Simd<T>::W : 0;
  const std::int64_t slices = parallel ? threads : 1;
  thread_local std::vector<T> packs;  // keeps its capacity from call to call
  if (slice > 0 && packs.size() < static_cast<std::size_t>(slices * slice))
    packs.resize(static_cast<std::size_t>(slices * slice));
  // A lambda does not capture a thread_local: run on a helper, `packs` would name the
  // helper's own buffer. So the parts get the caller's through this pointer.
  T* const packed = packs.data();
  // run_parts makes at most as many parts as the pool has threads; if set_num_threads() raced
  // with this call and made more, the extra parts read B in place (the same bits).
  const auto pack = [&](std::int64_t part) {
    return slice > 0 && part < slices ? packed + part * slice : nullptr;
  };
  if (!parallel) return gemm_direct<T>(m, n, k, a, b, tail, c, accumulate, pack(0));
  auto rows = [&](std::int64_t i, std::int64_t end, std::int64_t part) {
    gemm_direct<T>(end - i, n, k, {a.data + i * a.rs, a.rs, a.cs}, b, tail,
                   {c.data + i * c.rs, c.rs, c.cs}, accumulate, pack(part));
  };
  // Every part but the last is whole panels; the last ends with B's tail, as the whole does.
  auto cols = [&](std::int64_t j, std::int64_t end, std::int64_t part) {
    gemm_direct<T>(m, end - j, k, a, b.from(j), tail, {c.data + j * c.cs, c.rs, c.cs}, accumulate,
                   pack(part));
  };
  if (m >= n)
    run_parts(m, kMR, rows);
  else
    run_parts(n, kNV * Simd<T>::W, cols);
}

// The product through gemm_kernel.hpp's kernel, which reads B's rows, panel by panel. When A
// and B are both column-major, the transposed product C^T = B^T A^T has a row-major operand
// (A^T) in B's place; when A is row-major and B column-major (y = x W^T), one of them is
// copied transposed, in panels (copy_panels), first, once for all threads: A^T (x^T, the
// batch) up to kCopyRowsMax rows of A, so that C^T's rows are the outputs and its columns the
// batch, whole panels at batches of 64, 128 and 256; else the smaller of A^T and B, which
// bounds the copy by the larger operand's size. Either way each element of C is the same
// chain of FMAs. In bench_gemm's second table, with row-major copies (before session 17),
// copying x^T ran every forward product of the reference models 1.01-1.27x faster than
// copying W^T at batches 64-256, and 2x for their last layer (100 -> 10, where W^T makes
// one-vector panels) (AMD EPYC Zen 5; docs/benchmarks.md).
inline constexpr std::int64_t kCopyRowsMax = 256;
template <typename T>
void gemm_by_kernel(std::int64_t m, std::int64_t n, std::int64_t k, const Operand<T>& a,
                    const Operand<T>& b, T* c, std::int64_t ldc, bool accumulate) {
  const auto strided = [](const Operand<T>& o) {
    return o.row_major ? Strided<const T>{o.data, o.stride, 1}
                       : Strided<const T>{o.data, 1, o.stride};
  };
  const auto transposed = [](const Strided<const T>& s) {
    return Strided<const T>{s.data, s.cs, s.rs};
  };
  if (b.row_major) {
    gemm_direct_parallel<T>(m, n, k, strided(a), panels_in_place(b.data, b.stride), {c, ldc, 1},
                            accumulate);
    return;
  }
  if (!a.row_major) {  // C^T (n x m) = B^T A^T, and A^T is row-major
    gemm_direct_parallel<T>(n, m, k, transposed(strided(b)), panels_in_place(a.data, a.stride),
                            {c, 1, ldc}, accumulate);
    return;
  }
  thread_local std::vector<T> copied;  // keeps its capacity from call to call
  if (m <= n || m <= kCopyRowsMax) {   // A^T (k x m) copied; C^T = B^T A^T
    const Panels<T> a_t = copy_panels(k, m, a.data, a.stride, copied);
    gemm_direct_parallel<T>(n, m, k, transposed(strided(b)), a_t, {c, 1, ldc}, accumulate);
  } else {  // B (k x n) copied
    const Panels<T> b_copy = copy_panels(k, n, b.data, b.stride, copied);
    gemm_direct_parallel<T>(m, n, k, strided(a), b_copy, {c, ldc, 1}, accumulate);
  }
}
#endif  // BACKPROP_GEMM_KERNEL

// C += A B: A is m x k, B is k x n, C is m x n row-major with row stride ldc; C must not
// overlap A or B.
template <typename T>
void gemm_add(std::int64_t m, std::int64_t n, std::int64_t k, const Operand<T>& a,
              const Operand<T>& b, T* c, std::int64_t ldc) {
  if (m == 0 || n == 0 || k == 0) return;
#if BACKPROP_GEMM_KERNEL
  if constexpr (kKernelType<T>)
    if (k > kKernelMinDepth && k <= kKernelMaxDepth)
      return gemm_by_kernel(m, n, k, a, b, c, ldc, true);
#endif
  // Eigen packs both operands of every call (A once per column tile, B once per row tile),
  // so its tiles are few: at most kEigenColTiles blocks of columns (whole vectors) x blocks
  // of kEigenTileRows rows.
  const bool large = parallel_product(m, n, k, kEigenParallelMinFlops);
  const std::int64_t rows = large ? kEigenTileRows : m;
  const std::int64_t cols = large ? ((n + kEigenColTiles - 1) / kEigenColTiles + 15) / 16 * 16 : n;
  auto tile = [&](std::int64_t i, std::int64_t j, std::int64_t tm, std::int64_t tn) {
    const Operand<T> ta{a.row_major ? a.data + i * a.stride : a.data + i, a.stride, a.row_major};
    const Operand<T> tb{b.row_major ? b.data + j : b.data + j * b.stride, b.stride, b.row_major};
    T* tc = c + i * ldc + j;
    constexpr int R = Eigen::RowMajor, C = Eigen::ColMajor;
    if (a.row_major && b.row_major)
      gemm_eigen<T, R, R>(tm, tn, k, ta, tb, tc, ldc);
    else if (a.row_major)
      gemm_eigen<T, R, C>(tm, tn, k, ta, tb, tc, ldc);
    else if (b.row_major)
      gemm_eigen<T, C, R>(tm, tn, k, ta, tb, tc, ldc);
    else
      gemm_eigen<T, C, C>(tm, tn, k, ta, tb, tc, ldc);
  };
  run_tiles(m, n, rows, cols, tile);
}

// C = A B (C is overwritten).
template <typename T>
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, const Operand<T>& a, const Operand<T>& b,
          T* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
#if BACKPROP_GEMM_KERNEL
  if constexpr (kKernelType<T>)
    if (k > kKernelMinDepth && k <= kKernelMaxDepth)
      return gemm_by_kernel(m, n, k, a, b, c, ldc, false);
#endif
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = T(0);
  gemm_add(m, n, k, a, b, c, ldc);
}

}  // namespace detail
}  // namespace backprop
