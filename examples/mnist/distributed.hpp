// SPDX-License-Identifier: MIT
// The MNIST example's --distributed mode: data-parallel training over MPI (mpirun -np N mnist
// --distributed). A part of main.cpp kept apart, not a standalone header: main.cpp includes
// it once, after the helpers it shares with run() (History, evaluate, write_pictures, ...).
// Guide: docs/distributed.md   Test: tests/distributed/mnist_two_ranks.sh
#pragma once

#include <backprop/distributed/mpi.hpp>
#include <backprop/distributed/sampler.hpp>
#include <backprop/io/safetensors.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The parameters and momentum buffers of this rank, for the test that checks that the
// replicas stay bit-identical (BatchNorm's running statistics are per rank, so left out).
void save_replica(const std::string& dir, int rank, Module<float>& model, SGD<float>& optimizer) {
  std::vector<io::TensorRef> refs;
  for (const Parameter<float>& p : model.parameters()) refs.push_back(io::tensor_ref(p.name, *p.value));
  for (std::size_t i = 0; i < optimizer.momentum_buffer().size(); ++i)
    refs.push_back(io::tensor_ref("optimizer.momentum_buffer." + optimizer.parameters()[i].name,
                                  optimizer.momentum_buffer()[i]));
  io::write_safetensors(dir + "/replica-" + std::to_string(rank) + ".safetensors", refs);
}

// run() on every rank of an MPI job, with what data parallelism changes marked
// "distributed:". Each rank takes --batch-size samples per step: the global batch is
// world_size x --batch-size.
int train_distributed(Options o, const distributed::ProcessGroup& world) {
  const int rank = world.rank(), size = world.world_size();
  const bool root = rank == 0;
  set_num_threads(o.threads > 0 ? o.threads : 1);  // one rank per core is MPI's usual layout
  // Every rank reads the files (on several machines, the same paths must exist on each) and
  // restores the optimizer and epoch from the same --resume file; rank 0 writes the outputs.
  Session session(o, /*make_out_dir=*/root);
  auto& [train, test, model, optimizer, schedule, criterion, h, start_epoch] = session;

  // distributed: rank 0's weights and buffers on every rank, and gradients averaged by
  // ddp.backward(); the same seed gives every rank the same permutation, of which each
  // takes every size-th sample (DistributedSampler).
  distributed::DistributedDataParallel<float> ddp(*model, world);
  distributed::DistributedDataLoader<float> train_loader(train, o.batch_size, size, rank, o.shuffle,
                                                         o.seed);
  DataLoader<float> test_loader(test, o.test_batch_size);
  mnist::ProgressBar bar(root && ::isatty(STDERR_FILENO) == 1);
  std::vector<float> step_losses;  // this epoch's, one per step; averaged over ranks
  step_losses.reserve(static_cast<std::size_t>(train_loader.num_batches()));
  std::int64_t steps_left = o.max_steps, steps_run = 0, global_samples = 0;
  double train_seconds = 0;

  for (std::int64_t epoch = start_epoch; epoch < o.epochs && steps_left != 0; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    ddp.train();
    const double lr = schedule.set_epoch(epoch);
    train_loader.set_epoch(static_cast<std::uint64_t>(epoch));
    double sums[2] = {0, 0};  // loss, accuracy: sums over this rank's steps
    step_losses.clear();
    bar.start("epoch " + std::to_string(epoch), train_loader.num_batches());
    for (Index b = 0; b < train_loader.num_batches() && steps_left != 0; ++b, --steps_left) {
      const Batch<float>& batch = train_loader.batch(b);
      optimizer.zero_grad();
      const Tensor<float>& out = ddp.forward(batch.images);
      const float loss = criterion.forward(out, batch.labels);
      if (!std::isfinite(loss))
        throw std::runtime_error("the training loss became " + std::to_string(loss) + " at epoch " +
                                 std::to_string(epoch) + ", step " + std::to_string(b) +
                                 ": try a smaller --lr");
      ddp.backward(criterion.backward());  // distributed: + MPI_Allreduce of the gradients
      optimizer.step();
      sums[0] += loss;
      sums[1] += static_cast<double>(num_correct(out, batch.labels)) / static_cast<double>(batch.size());
      step_losses.push_back(loss);
      ++steps_run;
      global_samples += batch.size() * size;
      bar.update(b + 1, batch.size() * size);
    }
    bar.finish();
    train_seconds += seconds_since(epoch_start);
    h.train_seconds += seconds_since(epoch_start);
    // distributed: every rank ran the same steps on equal batches, so the mean over ranks
    // of a step's losses is the loss of the global batch: two calls per epoch, not per step.
    const auto steps = static_cast<double>(step_losses.size());
    distributed::all_reduce(sums, 2, world);
    distributed::all_reduce(step_losses.data(), static_cast<Index>(step_losses.size()), world);
    for (float& l : step_losses) h.losses.push_back(l / static_cast<float>(size));
    if (!all_finite(*model))  // the replicas are identical: every rank throws, or none
      throw std::runtime_error("the weights are no longer finite after epoch " + std::to_string(epoch) +
                               ": try a smaller --lr; nothing was saved for this epoch");
    if (!root) continue;
    // distributed: rank 0 alone evaluates, with its own BatchNorm running statistics: the
    // model it saves, so a reloaded checkpoint scores what is printed here.
    const PassResult te = evaluate(*model, test_loader, bar);
    const double train_loss = sums[0] / (steps * size), train_acc = sums[1] / (steps * size);
    h.epochs.push_back({epoch, lr, train_loss, train_acc, te.loss, te.acc, seconds_since(epoch_start)});
    std::printf("epoch: %lld, Train Loss: %.4f, Train Acc: %.4f, Test Loss: %.4f, Test Acc: %.4f\n",
                static_cast<long long>(epoch), train_loss, train_acc, te.loss, te.acc);
    std::fflush(stdout);
    write_metrics_csv(o.out + "/metrics.csv", h);
    write_losses_csv(o.out + "/losses.csv", h);
    if (!o.save.empty()) {  // distributed: rank 0 only, as everything written below
      h.seed = o.seed;
      io::Metadata meta = h.to_metadata();
      meta["preset"] = o.preset;
      meta["distributed.world_size"] = std::to_string(size);
      io::save_checkpoint(o.save, *model, optimizer, epoch + 1, default_generator(), meta);
    }
  }

  // Test hook (tests/distributed/mnist_two_ranks.sh): every rank writes its replica.
  if (const char* dir = std::getenv("MNIST_SAVE_REPLICAS")) save_replica(dir, rank, *model, optimizer);
  if (!root) return 0;
  if (o.preset == "deep-mlp") std::printf("time:%.5f\n", h.train_seconds);
  // What docs/distributed.md's scaling section reports.
  const distributed::CommStats& c = ddp.stats();
  const double steps = static_cast<double>(std::max<std::int64_t>(steps_run, 1));
  std::fprintf(stderr,
               "distributed: %d ranks x batch %lld = global batch %lld; %.0f training samples/s; "
               "per step %.0f all-reduce call(s), %.3f MB, %.3f ms (rank 0, waiting included)\n",
               size, static_cast<long long>(o.batch_size), static_cast<long long>(o.batch_size * size),
               train_seconds > 0 ? static_cast<double>(global_samples) / train_seconds : 0.0,
               static_cast<double>(c.all_reduce_calls) / steps,
               static_cast<double>(c.all_reduce_bytes) / steps / 1e6,
               1e3 * c.all_reduce_seconds / steps);
  return finish(o, session, test_loader, bar);
}

// main()'s entry for --distributed: one rank's failure ends the whole job, since the other
// ranks would wait for it forever in their next collective.
int run_distributed(const Options& o) {
  distributed::ProcessGroup world;
  try {
    return train_distributed(o, world);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist: error (rank %d of %d): %s\n", world.rank(), world.world_size(), e.what());
    std::fflush(stderr);
    world.abort(1);
  }
}

}  // namespace
