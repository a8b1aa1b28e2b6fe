// SPDX-License-Identifier: MIT
// libFuzzer target: read_safetensors, load_state_dict and load_checkpoint into a small bn-mlp
// (the body is fuzz::safetensors_target, harness.hpp). Built with BACKPROP_FUZZ=ON and clang;
// run by CTest as fuzz:safetensors (tests/fuzz/README.md).
#include <cstddef>
#include <cstdint>

#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::safetensors_target(data, size);
  return 0;
}
