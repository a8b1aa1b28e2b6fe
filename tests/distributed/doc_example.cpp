// SPDX-License-Identifier: MIT
// The program in docs/distributed.md, built and run on 2 ranks by CTest (distributed:doc_example).
#include <backprop/backprop.hpp>
#include <backprop/distributed/mpi.hpp>
#include <backprop/distributed/sampler.hpp>
#include <cstdio>
using namespace backprop;

int main(int argc, char** argv) {
  distributed::ProcessGroup world(&argc, &argv);  // torch.distributed.init_process_group("mpi")

  // A toy dataset, the same on every rank: is the first feature positive?
  Generator data(7);
  Tensor<float> images = Tensor<float>::randn({1000, 20}, data);
  Tensor<std::int64_t> labels({1000});
  for (Index i = 0; i < 1000; ++i) labels[i] = images.at({i, 0}) > 0 ? 1 : 0;

  Sequential<float> model(Linear<float>(20, 16), BatchNorm1d<float>(16), ReLU<float>(),
                          Linear<float>(16, 2));
  distributed::DistributedDataParallel<float> ddp(model, world);  // rank 0's weights everywhere
  SGD<float> optimizer(model.parameters(), 0.1, 0.5);
  CrossEntropyLoss<float> criterion;
  // 32 samples per rank and step: the global batch is 32 x world_size().
  distributed::DistributedDataLoader<float> loader(images, labels, 32, world.world_size(),
                                                   world.rank(), /*shuffle=*/true, /*seed=*/0);
  for (Index epoch = 0; epoch < 5; ++epoch) {
    ddp.train();
    loader.set_epoch(epoch);  // DistributedSampler.set_epoch(epoch)
    double loss = 0;
    for (Index b = 0; b < loader.num_batches(); ++b) {
      const io::Batch<float>& batch = loader.batch(b);
      optimizer.zero_grad();
      loss += criterion.forward(ddp.forward(batch.images), batch.labels);
      ddp.backward(criterion.backward());  // loss.backward(), then the gradients are averaged
      optimizer.step();
    }
    distributed::all_reduce(&loss, 1, world);  // the sum over ranks, on every rank
    if (world.rank() == 0)
      std::printf("epoch %d: loss %.4f\n", static_cast<int>(epoch),
                  loss / static_cast<double>(loader.num_batches() * world.world_size()));
  }
}
