#include <backprop/backprop.hpp>
#include <cstdio>
using namespace backprop;

// class Net(nn.Module): layer1 = Sequential(Linear, BatchNorm1d), ...
struct Net : Module<float> {
  Sequential<float> layer1{Linear<float>(784, 300), BatchNorm1d<float>(300)};
  Sequential<float> layer2{Linear<float>(300, 100), BatchNorm1d<float>(100)};
  Sequential<float> layer3{Linear<float>(100, 10)};
  ReLU<float> relu1, relu2;

  // x = F.relu(self.layer1(x)); x = F.relu(self.layer2(x)); x = self.layer3(x)
  const Tensor<float>& forward(const Tensor<float>& x) override {
    return layer3(relu2(layer2(relu1(layer1(x)))));
  }
  // No autograd: the backward is the same chain, last to first.
  const Tensor<float>& backward(const Tensor<float>& dy) override {
    return layer1.backward(relu1.backward(layer2.backward(relu2.backward(layer3.backward(dy)))));
  }
  // Names for state_dict(): "layer1.0.weight", "layer1.1.running_mean", ... as in PyTorch.
  void visit(StateVisitor<float>& v) override {
    v.module("layer1", layer1);
    v.module("layer2", layer2);
    v.module("layer3", layer3);
  }
};

int main() {
  Net model;
  CrossEntropyLoss<float> criterion;                    // nn.CrossEntropyLoss()
  SGD<float> optimizer(model.parameters(), 0.01, 0.5);  // optim.SGD(..., lr, momentum)
  // if epoch % 5 == 0: lr *= 0.1   (at the start of epoch 0 too, as reference 1)
  StepLR<SGD<float>> schedule(optimizer, 5, 0.1, /*decay_at_start=*/true);

  Generator gen(0);
  Tensor<float> img = Tensor<float>::randn({64, 784}, gen);  // a batch (use MNIST here)
  Tensor<std::int64_t> label = Tensor<std::int64_t>::zeros({64});

  for (Index epoch = 0; epoch < 20; ++epoch) {
    model.train();
    schedule.set_epoch(epoch);
    optimizer.zero_grad();                                      // optimizer.zero_grad()
    float loss = criterion.forward(model.forward(img), label);  // loss = criterion(out, label)
    model.backward(criterion.backward());                       // loss.backward()
    optimizer.step();                                           // optimizer.step()
    std::printf("epoch: %d, loss: %.4f\n", static_cast<int>(epoch), loss);
  }
}
