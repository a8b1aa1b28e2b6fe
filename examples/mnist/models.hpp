// SPDX-License-Identifier: MIT
// The two reference models, written as in their PyTorch programs (tests/reference/mnist_torch.py).
#pragma once

#include <backprop/backprop.hpp>
#include <iterator>

namespace mnist {

using backprop::BatchNorm1d;
using backprop::Dropout;
using backprop::Linear;
using backprop::ReLU;
using backprop::Sequential;
using backprop::StateVisitor;
using backprop::Tensor;

/// Reference 1 ("bn-mlp"): class Net with three Sequential blocks,
///   x -> relu(layer1(x)) -> relu(layer2(.)) -> layer3(.),  784-300-100-10.
/// state_dict keys: layer1.0.weight, layer1.1.running_mean, ..., layer3.0.bias.
/// dropout > 0 (not in the reference) adds Dropout(dropout) after each ReLU, as
/// F.dropout(F.relu(...)) would: no state, so the keys stay the same.
template <typename T>
class Net : public backprop::Module<T> {
 public:
  Net(backprop::Index in_dim = 784, backprop::Index n_hidden_1 = 300,
      backprop::Index n_hidden_2 = 100, backprop::Index out_dim = 10, double dropout = 0)
      : layer1(Linear<T>(in_dim, n_hidden_1), BatchNorm1d<T>(n_hidden_1)),
        layer2(Linear<T>(n_hidden_1, n_hidden_2), BatchNorm1d<T>(n_hidden_2)),
        layer3(Linear<T>(n_hidden_2, out_dim)),
        drop1(dropout),
        drop2(dropout),
        dropout_(dropout > 0) {}

  const Tensor<T>& forward(const Tensor<T>& x) override {
    const Tensor<T>* h1 = &relu1(layer1(x));
    if (dropout_) h1 = &drop1(*h1);
    const Tensor<T>* h2 = &relu2(layer2(*h1));
    if (dropout_) h2 = &drop2(*h2);
    return layer3(*h2);
  }

  // The same chain, last to first.
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>* d2 = &layer3.backward(grad_output);
    if (dropout_) d2 = &drop2.backward(*d2);
    const Tensor<T>* d1 = &layer2.backward(relu2.backward(*d2));
    if (dropout_) d1 = &drop1.backward(*d1);
    return layer1.backward(relu1.backward(*d1));
  }

  void set_input_requires_grad(bool on) override {
    backprop::Module<T>::set_input_requires_grad(on);
    layer1.set_input_requires_grad(on);
  }

  void visit(StateVisitor<T>& v) override {
    v.module("layer1", layer1);
    v.module("layer2", layer2);
    v.module("layer3", layer3);
    if (dropout_) {  // for train() / eval(); no state, so no keys (as self.drop1 = nn.Dropout)
      v.module("drop1", drop1);
      v.module("drop2", drop2);
    }
  }

  Sequential<T> layer1, layer2, layer3;
  ReLU<T> relu1, relu2;  // F.relu in the reference: no state, so no state_dict keys
  Dropout<T> drop1, drop2;

 private:
  bool dropout_;  // p = 0 leaves the modules out, so the reference's run is unchanged
};

/// Reference 2 ("deep-mlp"): nn.Sequential(Linear(784,600), ReLU, Linear(600,400), ReLU,
/// Linear(400,200), ReLU, Linear(200,100), ReLU, Linear(100,10)); keys 0.weight ... 8.bias.
/// dropout > 0 (not in the reference) puts nn.Dropout(dropout) after each ReLU in the
/// Sequential, which shifts the indices as in PyTorch: keys 0, 3, 6, 9, 12 (.weight, .bias).
template <typename T>
Sequential<T> deep_mlp(backprop::Index in_dim = 784, backprop::Index out_dim = 10,
                       double dropout = 0) {
  const backprop::Index widths[] = {in_dim, 600, 400, 200, 100};
  Sequential<T> net;
  for (std::size_t i = 0; i + 1 < std::size(widths); ++i) {
    net.push_back(Linear<T>(widths[i], widths[i + 1]));
    net.push_back(ReLU<T>());
    if (dropout > 0) net.push_back(Dropout<T>(dropout));
  }
  net.push_back(Linear<T>(100, out_dim));
  return net;
}

}  // namespace mnist
