// SPDX-License-Identifier: MIT
// backprop: the number of threads Eigen's matrix products may use.
#pragma once

#include <Eigen/Core>

namespace backprop {

/// Threads for matrix products (OpenMP, through Eigen). Without OpenMP this does nothing
/// and get_num_threads() is 1.
/// Example: backprop::set_num_threads(1);
inline void set_num_threads(int n) { Eigen::setNbThreads(n); }
inline int get_num_threads() { return Eigen::nbThreads(); }

}  // namespace backprop
