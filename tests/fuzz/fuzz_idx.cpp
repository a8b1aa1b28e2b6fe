// SPDX-License-Identifier: MIT
// libFuzzer target: read_idx on raw and gzip files (the body is fuzz::idx_target, harness.hpp).
// Built with BACKPROP_FUZZ=ON and clang; run by CTest as fuzz:idx (tests/fuzz/README.md).
#include <cstddef>
#include <cstdint>

#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::idx_target(data, size);
  return 0;
}
