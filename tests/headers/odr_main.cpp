// SPDX-License-Identifier: MIT
// ODR test: this TU and odr_other.cpp both include the umbrella header and use the same
// templates and inline functions; the program must link and agree on shared state.
#include <backprop/backprop.hpp>
#include <backprop/gradcheck.hpp>  // not in the umbrella; its inline functions too
#include <cstdio>

float train_one_step_other();                 // defined in odr_other.cpp
backprop::Generator& generator_from_other();  // the default generator, seen from there

int main() {
  if (&backprop::default_generator() != &generator_from_other()) {
    std::puts("default_generator() differs between translation units");
    return 1;
  }
  backprop::Linear<float> layer(4, 3);
  backprop::Tensor<float> x = backprop::Tensor<float>::ones({2, 4});
  const float here = layer.forward(x).matrix().sum();
  const float there = train_one_step_other();
  std::printf("ok %g %g\n", static_cast<double>(here), static_cast<double>(there));
  return 0;
}
