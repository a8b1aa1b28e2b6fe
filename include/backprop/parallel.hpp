// SPDX-License-Identifier: MIT
// backprop: threads for the large matrix products (detail/gemm.hpp). One thread by default.
#pragma once

#include "detail/error.hpp"
#include "detail/thread_pool.hpp"

namespace backprop {

/// Threads for Linear's large matrix products and SGD's updates (the caller plus n - 1
/// helper threads; 1 by default). Results are bitwise the same for every n: through our GEMM
/// kernel each element is one chain of FMAs wherever a product is cut, and Eigen's kernel
/// gets tiles fixed by the shape (detail/gemm.hpp). When the process's threads are short of
/// cores (preempted 3 or more times per 20 ms in two 20 ms windows in a row: another program
/// wants the same cores, or the program runs more threads than there are cores), the calling
/// thread works alone for a while, up to 1.6 s at a time, and then tries its helpers again
/// (detail/thread_pool.hpp; where getrusage exists: Linux, macOS, other Unix). Call
/// between training steps, not during one. Example: backprop::set_num_threads(2);
inline void set_num_threads(int n) {
  detail::check(n >= 1, "set_num_threads", "n must be >= 1, got ", n);
  detail::thread_pool().resize(n);
}
inline int get_num_threads() { return detail::thread_pool().size(); }

}  // namespace backprop
