// SPDX-License-Identifier: MIT
// The second TU of the ODR test.
#include <backprop/backprop.hpp>
#include <backprop/gradcheck.hpp>  // not in the umbrella; its inline functions too

backprop::Generator& generator_from_other() { return backprop::default_generator(); }

float train_one_step_other() {
  using namespace backprop;
  Sequential<float> net(Linear<float>(4, 3), BatchNorm1d<float>(3), ReLU<float>(),
                        Linear<float>(3, 2));
  SGD<float> optimizer(net.parameters(), 0.1, 0.9);
  CrossEntropyLoss<float> criterion;
  Tensor<std::int64_t> labels({2}, {0, 1});
  const float loss = criterion.forward(net.forward(Tensor<float>::ones({2, 4})), labels);
  net.backward(criterion.backward());
  optimizer.step();
  return loss;
}
