// SPDX-License-Identifier: MIT
// backprop: error-message helpers shared by every header (not part of the public API).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace backprop::detail {

// Concatenates anything streamable: concat("x has ", 3, " columns").
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

// "[64, 784]", the way PyTorch prints a size.
template <typename I>
std::string shape_str(const std::vector<I>& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

// Throws std::invalid_argument("<where>: <what>") when cond is false. The message is
// only built on failure, so checks on the hot path cost one branch.
template <typename... Args>
void check(bool cond, const char* where, const Args&... what) {
  if (!cond) throw std::invalid_argument(concat(where, ": ", what...));
}

}  // namespace backprop::detail
