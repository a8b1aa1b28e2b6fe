// SPDX-License-Identifier: MIT
// A program outside the project that uses the installed or added library.
#include <backprop/backprop.hpp>
#include <cstdio>

int main() {
  using namespace backprop;
  Sequential<float> net(Linear<float>(8, 5), BatchNorm1d<float>(5), ReLU<float>(),
                        Linear<float>(5, 3));
  SGD<float> optimizer(net.parameters(), 0.1, 0.5);
  CrossEntropyLoss<float> criterion;
  Generator gen(7);
  const Tensor<float> x = Tensor<float>::randn({6, 8}, gen);
  const Tensor<std::int64_t> labels({6}, {0, 1, 2, 0, 1, 2});
  float first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    optimizer.zero_grad();
    last = criterion.forward(net.forward(x), labels);
    if (step == 0) first = last;
    net.backward(criterion.backward());
    optimizer.step();
  }
  if (!(last < first)) {
    std::printf("loss did not fall: %g -> %g\n", double(first), double(last));
    return 1;
  }
  std::printf("consumer ok: loss %g -> %g\n", double(first), double(last));
  return 0;
}
