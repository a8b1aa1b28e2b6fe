// SPDX-License-Identifier: MIT
// The MNIST example's --distributed mode: data-parallel training over MPI (mpirun -np N mnist
// --distributed). MpiWorld is one rank of the job: main.cpp's training loop runs unchanged
// and asks it for what data parallelism changes (the loader's shard, the gradient average,
// the sums over ranks). Without MPI, run_distributed() says how to get it.
// Guide: docs/distributed.md   Test: tests/distributed/mnist_two_ranks.sh
#pragma once

#include <stdexcept>

#include "options.hpp"
#include "session.hpp"

#ifdef BACKPROP_MNIST_MPI
#include <algorithm>
#include <backprop/distributed/mpi.hpp>
#include <backprop/distributed/sampler.hpp>
#include <backprop/io/safetensors.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#endif

namespace mnist {

#ifdef BACKPROP_MNIST_MPI

namespace dist = backprop::distributed;

/// One rank of an MPI job. Each rank takes --batch-size samples per step: the global batch
/// is world_size x --batch-size. Every rank reads the files (on several machines the same
/// paths must exist on each) and restores the same --resume file; rank 0 writes the outputs.
class MpiWorld : public World {
 public:
  MpiWorld() = default;
  int rank() const override { return group_.rank(); }
  int size() const override { return group_.world_size(); }
  const dist::ProcessGroup& group() const { return group_; }
  int threads(const Options& o) const override {
    return o.threads > 0 ? o.threads : 1;
  }  // a rank per core

  // Rank 0's weights and buffers on every rank, and gradients averaged by ddp.backward().
  Module<float>& parallel(Module<float>& model) override {
    ddp_.emplace(model, group_);
    return *ddp_;
  }
  // The same seed gives every rank the same permutation, of which each takes every
  // size-th sample (DistributedSampler).
  std::unique_ptr<TrainLoader> train_loader(const backprop::io::MnistDataset<float>& train,
                                            const Options& o) override {
    batch_size_ = o.batch_size;
    return std::make_unique<TrainLoaderOf<dist::DistributedDataLoader<float>>>(
        train, o.batch_size, size(), rank(), o.shuffle, o.seed);
  }
  void sum(double* v, Index n) override { dist::all_reduce(v, n, group_); }
  void sum(float* v, Index n) override { dist::all_reduce(v, n, group_); }
  bool any(bool flag) override {
    std::int64_t f = flag;
    dist::all_reduce(&f, 1, group_, dist::ReduceOp::MAX);
    return f != 0;
  }

  // The test hook of tests/distributed/mnist_two_ranks.sh, and what docs/distributed.md's
  // scaling section reports.
  void after_training(Module<float>& model, backprop::Optimizer<float>& optimizer,
                      std::int64_t steps_run, double seconds) override {
    if (const char* dir = std::getenv("MNIST_SAVE_REPLICAS")) save_replica(dir, model, optimizer);
    if (!root() || !ddp_) return;
    const dist::CommStats& c = ddp_->stats();
    const double steps = static_cast<double>(std::max<std::int64_t>(steps_run, 1));
    const double samples = static_cast<double>(steps_run * batch_size_ * size());
    std::fprintf(
        stderr,
        "distributed: %d ranks x batch %lld = global batch %lld; %.0f training samples/s; "
        "per step %.0f all-reduce call(s), %.3f MB, %.3f ms (rank 0, waiting included)\n",
        size(), static_cast<long long>(batch_size_), static_cast<long long>(batch_size_ * size()),
        seconds > 0 ? samples / seconds : 0.0, static_cast<double>(c.all_reduce_calls) / steps,
        static_cast<double>(c.all_reduce_bytes) / steps / 1e6, 1e3 * c.all_reduce_seconds / steps);
  }

 private:
  // The parameters and optimizer state (momentum buffers, exp_avg, ...) of this rank, for the
  // test that checks that the replicas stay bit-identical (BatchNorm's running statistics are
  // per rank, so left out).
  void save_replica(const std::string& dir, Module<float>& model,
                    backprop::Optimizer<float>& optimizer) {
    struct Refs : backprop::OptimizerStateVisitor<float> {
      const std::vector<backprop::Parameter<float>>* params = nullptr;
      std::vector<backprop::io::TensorRef> refs;
      void tensors(std::string_view name, std::vector<Tensor<float>>& per_parameter) override {
        for (std::size_t i = 0; i < per_parameter.size(); ++i)
          refs.push_back(backprop::io::tensor_ref(
              "optimizer." + std::string(name) + "." + (*params)[i].name, per_parameter[i]));
      }
      void counter(std::string_view, std::int64_t&) override {}
    } state;
    state.params = &optimizer.parameters();
    for (const backprop::Parameter<float>& p : model.parameters())
      state.refs.push_back(backprop::io::tensor_ref(p.name, *p.value));
    optimizer.visit_state(state);
    std::vector<backprop::io::TensorRef>& refs = state.refs;
    backprop::io::write_safetensors(dir + "/replica-" + std::to_string(rank()) + ".safetensors",
                                    refs);
  }

  dist::ProcessGroup group_;
  std::optional<dist::DistributedDataParallel<float>> ddp_;
  std::int64_t batch_size_ = 0;
};

/// main()'s entry for --distributed: one rank's failure ends the whole job, since the other
/// ranks would wait for it forever in their next collective.
template <typename Train>
int run_distributed(const Options& o, Train train) {
  MpiWorld world;
  try {
    return train(o, world);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist: error (rank %d of %d): %s\n", world.rank(), world.size(),
                 e.what());
    std::fflush(stderr);
    world.group().abort(1);
  }
}

#else

template <typename Train>
int run_distributed(const Options&, Train) {
  throw std::runtime_error(
      "--distributed needs MPI, and this mnist was built without it "
      "(./scripts/test.sh --mpi installs it and builds with it)");
}

#endif

}  // namespace mnist
