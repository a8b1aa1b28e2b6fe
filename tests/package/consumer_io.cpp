// SPDX-License-Identifier: MIT
// A program outside the project that uses backprop::io: trains, saves, loads a checkpoint.
#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/mnist.hpp>
#include <cstdio>

// With a directory of MNIST files (not in the test; compiled under the user's warnings): the
// dataset kept as bytes, normalised by the loader.
static float first_input(const char* root) {
  const backprop::io::MnistDataset<float> train(root, /*train=*/true);
  backprop::io::DataLoader<float> loader(train, /*batch_size=*/64, /*shuffle=*/true, /*seed=*/1);
  return loader.batch(0).images[0];
}

int main(int argc, char** argv) {
  using namespace backprop;
  if (argc > 1) {
    std::printf("first input of %s: %g\n", argv[1], double(first_input(argv[1])));
    return 0;
  }
  Sequential<float> net(Linear<float>(4, 3));
  SGD<float> optimizer(net.parameters(), 0.1, 0.9);
  CrossEntropyLoss<float> criterion;
  Generator gen(3);
  const Tensor<float> x = Tensor<float>::randn({8, 4}, gen);
  const Tensor<std::int64_t> labels({8}, {0, 1, 2, 0, 1, 2, 0, 1});
  io::DataLoader<float> loader(x, labels, /*batch_size=*/4, /*shuffle=*/true, /*seed=*/5);
  for (Index b = 0; b < loader.num_batches(); ++b) {
    const io::Batch<float>& batch = loader.batch(b);
    optimizer.zero_grad();
    criterion.forward(net.forward(batch.images), batch.labels);
    net.backward(criterion.backward());
    optimizer.step();
  }
  io::save_checkpoint("consumer_ckpt.safetensors", net, optimizer, 1, gen);
  Sequential<float> again(Linear<float>(4, 3));
  SGD<float> optimizer2(again.parameters(), 0.5, 0.9);
  Generator gen2(0);
  const io::CheckpointState s =
      io::load_checkpoint("consumer_ckpt.safetensors", again, optimizer2, gen2);
  const Tensor<float>& w = *std::get<Tensor<float>*>(net.state_dict().front().tensor);
  const Tensor<float>& w2 = *std::get<Tensor<float>*>(again.state_dict().front().tensor);
  if (s.epoch != 1 || gen2.state() != gen.state() || optimizer2.lr() != 0.1 || !(w == w2)) {
    std::printf("checkpoint did not round-trip\n");
    return 1;
  }
  std::printf("consumer ok: checkpoint of %zu tensors round-tripped\n",
              io::read_safetensors("consumer_ckpt.safetensors").tensors.size());
  return 0;
}
