// SPDX-License-Identifier: MIT
// The two reference models, written as in their PyTorch programs (tests/reference/mnist_torch.py).
#pragma once

#include <backprop/backprop.hpp>

namespace mnist {

using backprop::BatchNorm1d;
using backprop::Linear;
using backprop::ReLU;
using backprop::Sequential;
using backprop::StateVisitor;
using backprop::Tensor;

/// Reference 1 ("bn-mlp"): class Net with three Sequential blocks,
///   x -> relu(layer1(x)) -> relu(layer2(.)) -> layer3(.),  784-300-100-10.
/// state_dict keys: layer1.0.weight, layer1.1.running_mean, ..., layer3.0.bias.
template <typename T>
class Net : public backprop::Module<T> {
 public:
  Net(backprop::Index in_dim = 784, backprop::Index n_hidden_1 = 300,
      backprop::Index n_hidden_2 = 100, backprop::Index out_dim = 10)
      : layer1(Linear<T>(in_dim, n_hidden_1), BatchNorm1d<T>(n_hidden_1)),
        layer2(Linear<T>(n_hidden_1, n_hidden_2), BatchNorm1d<T>(n_hidden_2)),
        layer3(Linear<T>(n_hidden_2, out_dim)) {}

  const Tensor<T>& forward(const Tensor<T>& x) override {
    const Tensor<T>& h1 = relu1(layer1(x));
    const Tensor<T>& h2 = relu2(layer2(h1));
    return layer3(h2);
  }

  // The same chain, last to first.
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>& d2 = relu2.backward(layer3.backward(grad_output));
    const Tensor<T>& d1 = relu1.backward(layer2.backward(d2));
    return layer1.backward(d1);
  }

  void set_input_requires_grad(bool on) override {
    backprop::Module<T>::set_input_requires_grad(on);
    layer1.set_input_requires_grad(on);
  }

  void visit(StateVisitor<T>& v) override {
    v.module("layer1", layer1);
    v.module("layer2", layer2);
    v.module("layer3", layer3);
  }

  Sequential<T> layer1, layer2, layer3;
  ReLU<T> relu1, relu2;  // F.relu in the reference: no state, so no state_dict keys
};

/// Reference 2 ("deep-mlp"): nn.Sequential(Linear(784,600), ReLU, Linear(600,400), ReLU,
/// Linear(400,200), ReLU, Linear(200,100), ReLU, Linear(100,10)); keys 0.weight ... 8.bias.
template <typename T>
Sequential<T> deep_mlp(backprop::Index in_dim = 784, backprop::Index out_dim = 10) {
  return Sequential<T>(Linear<T>(in_dim, 600), ReLU<T>(), Linear<T>(600, 400), ReLU<T>(),
                       Linear<T>(400, 200), ReLU<T>(), Linear<T>(200, 100), ReLU<T>(),
                       Linear<T>(100, out_dim));
}

}  // namespace mnist
