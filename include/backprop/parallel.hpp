// SPDX-License-Identifier: MIT
// backprop: threads for the large matrix products. One thread by default.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "detail/error.hpp"
#include "detail/thread_pool.hpp"

namespace backprop {
namespace detail {

// Products below this many flops run on the caller alone. Measured on 2 Zen 5 cores
// (docs/benchmarks.md): splitting the 30-MFLOP products of bn-mlp at batch 64 made training
// 5-10% slower (the helper pulls half of W and dW into its own cache every step, and they
// go back for the optimizer), while 60 MFLOP and more gain 15-27%. Inference gains earlier.
constexpr double kParallelMinFlops = 50e6;

// How many blocks a large product is cut into, whatever the number of threads: the cut
// must not depend on it, because Eigen sums the last rows of a block in another order
// (several partial sums) than the others, so moving a block edge changes the low bits.
// Two blocks keep both cores of a small machine busy; more would repack the shared operand
// more often on one thread.
constexpr std::int64_t kProductBlocks = 2;

// Cuts [0, total) into kProductBlocks contiguous blocks (multiples of 16, the AVX-512 float
// width, except the last) and calls f(begin, length) for each, on the pool's threads, when
// the work (flops) is large enough. Each block must write only its own part of the output.
template <typename F>
void parallel_blocks(std::int64_t total, double flops, F&& f) {
  if (flops < kParallelMinFlops || total < 16 * kProductBlocks) {
    f(std::int64_t(0), total);
    return;
  }
  const std::int64_t step = ((total + kProductBlocks - 1) / kProductBlocks + 15) / 16 * 16;
  struct Ctx {
    std::remove_reference_t<F>* f;
    std::int64_t total, step;
  } ctx{&f, total, step};
  thread_pool().run((total + step - 1) / step,
                    [](void* p, std::int64_t i) {
                      const Ctx& c = *static_cast<Ctx*>(p);
                      const std::int64_t begin = i * c.step;
                      (*c.f)(begin, std::min(c.step, c.total - begin));
                    },
                    &ctx);
}

}  // namespace detail

/// Threads for the large matrix products of Linear (the caller plus n - 1 helper threads;
/// 1 by default). Results are bitwise the same for every n: the products are cut into the
/// same blocks whatever n, and each block is one single-threaded product. Call between
/// training steps, not during one. Example: backprop::set_num_threads(2);
inline void set_num_threads(int n) {
  detail::check(n >= 1, "set_num_threads", "n must be >= 1, got ", n);
  detail::thread_pool().resize(n);
}
inline int get_num_threads() { return detail::thread_pool().size(); }

}  // namespace backprop
