// SPDX-License-Identifier: MIT
// Checks backprop/distributed/{mpi,sampler}.hpp on every rank of an MPI job (no Catch2: each
// rank runs every check, and a check fails if it fails on any rank):
//   mpiexec -n 2 check_ddp           the checks (CTest runs them on 2 and 3 ranks)
//   mpiexec -n 2 check_ddp --bench   time MPI_Allreduce of the example's gradient sizes
#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/distributed/mpi.hpp>
#include <backprop/distributed/sampler.hpp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace backprop;
namespace dist = backprop::distributed;

int failures = 0;

// Passes when cond holds on every rank; rank 0 reports.
void expect(bool cond, const dist::ProcessGroup& world, const std::string& what) {
  std::int64_t bad = cond ? 0 : 1;
  dist::all_reduce(&bad, 1, world, dist::ReduceOp::MAX);
  if (!cond) std::printf("rank %d: FAILED: %s\n", world.rank(), what.c_str());
  if (world.rank() == 0 && bad == 0) std::printf("ok: %s\n", what.c_str());
  if (bad) ++failures;
}

// Linear, BatchNorm1d (parameters, float buffers, an int64 buffer), ReLU, Linear: small odd
// sizes, so that a 16-element bucket splits tensors across buckets.
Sequential<float> make_model() {
  return Sequential<float>(Linear<float>(7, 5), BatchNorm1d<float>(5), ReLU<float>(),
                           Linear<float>(5, 3));
}

// Every float of the state_dict (parameters and buffers), in order.
std::vector<float> flat_state(Module<float>& m, bool buffers_too) {
  std::vector<float> out;
  for (const StateEntry<float>& e : m.state_dict())
    if (const auto* t = std::get_if<Tensor<float>*>(&e.tensor))
      if (e.grad || buffers_too) out.insert(out.end(), (*t)->begin(), (*t)->end());
  return out;
}

// Bitwise equal to rank 0's copy of the same vector.
bool same_as_rank0(std::vector<float> v, const dist::ProcessGroup& world) {
  std::vector<float> root = v;
  dist::broadcast(root.data(), static_cast<Index>(root.size()), world);
  return std::memcmp(root.data(), v.data(), v.size() * sizeof(float)) == 0;
}

void check_broadcast(const dist::ProcessGroup& world) {
  manual_seed(100 + static_cast<std::uint64_t>(world.rank()));  // different weights per rank
  Sequential<float> model = make_model();
  std::int64_t* tracked = nullptr;
  for (const StateEntry<float>& e : model.state_dict())
    if (auto* t = std::get_if<Tensor<std::int64_t>*>(&e.tensor)) tracked = (*t)->data();
  *tracked = 7 + world.rank();
  const bool same = same_as_rank0(flat_state(model, true), world);
  expect(world.rank() == 0 || !same, world, "the replicas start different (different seeds)");
  dist::DistributedDataParallel<float> ddp(model, world);
  expect(same_as_rank0(flat_state(model, true), world), world,
         "construction broadcasts rank 0's parameters and buffers, bit for bit");
  expect(*tracked == 7, world, "construction broadcasts rank 0's int64 buffers");
}

// The bucketed average equals per-tensor MPI_Allreduce / world_size, bit for bit.
void check_all_reduce(const dist::ProcessGroup& world, double bucket_cap_mb, Index buckets) {
  Sequential<float> model = make_model();
  dist::DistributedDataParallel<float> ddp(model, world, bucket_cap_mb);
  Generator gen(1000 + static_cast<std::uint64_t>(world.rank()));
  std::vector<Tensor<float>> expected;
  Index total = 0;
  for (const Parameter<float>& p : model.parameters()) {
    *p.grad = Tensor<float>::randn(p.grad->shape(), gen);
    Tensor<float> e = *p.grad;
    dist::all_reduce(e.data(), e.numel(), world);
    for (float& x : e) x /= static_cast<float>(world.world_size());
    expected.push_back(std::move(e));
    total += p.grad->numel();
  }
  ddp.all_reduce_gradients();
  bool same = true;
  for (std::size_t i = 0; i < expected.size(); ++i)
    same = same && *model.parameters()[i].grad == expected[i];
  const std::string cap = std::to_string(ddp.bucket_numel()) + "-element bucket";
  expect(same, world, "bucketed all-reduce (" + cap + ") = per-tensor average, bit for bit");
  const Index calls = world.world_size() > 1 ? buckets : 0;  // 1 rank: nothing to average
  expect(ddp.num_buckets() == buckets && ddp.stats().all_reduce_calls == calls &&
             ddp.stats().all_reduce_bytes == calls * total * 4 / buckets,
         world, "one MPI_Allreduce per bucket (" + cap + ": " + std::to_string(buckets) + ")");
}

// backward() averages; the replicas then take the same step. With zero_grad(true) the
// gradients are none when the wrapper is built and before each backward: the same steps.
void check_backward(const dist::ProcessGroup& world) {
  std::vector<float> trained[2];
  for (const bool set_to_none : {false, true}) {
    manual_seed(5);
    Sequential<float> model = make_model();
    if (set_to_none) model.zero_grad(true);
    dist::DistributedDataParallel<float> ddp(model, world);
    SGD<float> optimizer(model.parameters(), 0.1, 0.9);
    Generator gen(50 + static_cast<std::uint64_t>(world.rank()));  // each rank its own batch
    CrossEntropyLoss<float> criterion;
    for (int step = 0; step < 3; ++step) {
      const Tensor<float> x = Tensor<float>::randn({4, 7}, gen);
      Tensor<std::int64_t> y({4}, {0, 1, 2, step % 3});
      optimizer.zero_grad(set_to_none);
      criterion.forward(ddp.forward(x), y);
      ddp.backward(criterion.backward());
      optimizer.step();
    }
    trained[set_to_none] = flat_state(model, false);
    expect(same_as_rank0(trained[set_to_none], world), world,
           std::string("after 3 steps on different batches the parameters are identical on ") +
               "every rank (zero_grad(" + (set_to_none ? "true" : "") + "))");
  }
  expect(trained[0] == trained[1], world, "zero_grad(true) trains as zero_grad()");
  // Built over none gradients, the buckets are sized from the parameters; a gradient still
  // none when the average runs takes part as zeros, on any number of ranks.
  Sequential<float> model = make_model();
  model.zero_grad(true);
  dist::DistributedDataParallel<float> ddp(model, world, 64.0 / (1024 * 1024));  // 16 floats
  expect(ddp.bucket_numel() == 16 && ddp.num_buckets() == (68 + 15) / 16, world,
         "buckets sized from the parameters when the gradients are none");
  ddp.all_reduce_gradients();
  bool zeros = true;
  for (const Parameter<float>& p : model.parameters())
    zeros = zeros && *p.grad == Tensor<float>::zeros(p.value->shape());
  expect(zeros, world, "all_reduce_gradients() averages a none gradient as zeros");
}

void check_sampler(const dist::ProcessGroup& world) {
  const int w = world.world_size(), r = world.rank();
  const Index n = 103, f = 2, batch = 5;
  Tensor<float> images({n, f});
  Tensor<std::int64_t> labels({n});
  for (Index i = 0; i < n; ++i)
    images[i * f] = float(i), images[i * f + 1] = -float(i), labels[i] = i % 10;
  dist::DistributedDataLoader<float> loader(images, labels, batch, w, r, /*shuffle=*/true, 3);
  io::DataLoader<float> one(images, labels, batch * w, /*shuffle=*/true, 3);
  loader.set_epoch(4);
  one.set_epoch(4);
  std::int64_t counts[2] = {loader.num_batches(), loader.num_samples()};
  std::int64_t mins[2] = {counts[0], counts[1]};
  dist::all_reduce(mins, 2, world, dist::ReduceOp::MIN);
  dist::all_reduce(counts, 2, world, dist::ReduceOp::MAX);
  expect(mins[0] == counts[0] && mins[1] == counts[1] && counts[1] == (n + w - 1) / w, world,
         "every rank has ceil(N / W) samples in the same number of batches");

  // Batch b of all ranks = batch b of one process with batch W * B (padding aside).
  bool same = true, rows = true;
  for (Index b = 0; b < loader.num_batches(); ++b) {
    const io::Batch<float>& mine = loader.batch(b);
    std::vector<float> index(static_cast<std::size_t>(mine.size())), all(index.size() * w);
    for (Index i = 0; i < mine.size(); ++i) {  // column 0 is the sample's index
      index[static_cast<std::size_t>(i)] = mine.images[i * f];
      rows = rows && mine.images[i * f + 1] == -mine.images[i * f] &&
             mine.labels[i] == static_cast<std::int64_t>(mine.images[i * f]) % 10;
    }
    MPI_Allgather(index.data(), static_cast<int>(index.size()), MPI_FLOAT, all.data(),
                  static_cast<int>(index.size()), MPI_FLOAT, world.comm());
    if (b == loader.num_batches() - 1) continue;  // the last one may hold padding
    // gathered: rank-major; rank r's i-th is the (i * W + r)-th of the global batch
    const io::Batch<float>& global = one.batch(b);
    for (Index i = 0; i < mine.size(); ++i)
      for (int q = 0; q < w; ++q)
        same = same &&
               all[static_cast<std::size_t>(q * mine.size() + i)] == global.images[(i * w + q) * f];
  }
  expect(rows, world, "a batch holds the dataset rows of its indices");
  expect(same, world, "the ranks' batch b together are one process's batch b at batch W*B");

  // Over an epoch: every sample once, plus W*ceil(N/W) - N repeats.
  std::vector<Index> all(static_cast<std::size_t>(loader.num_samples() * w));
  MPI_Allgather(loader.indices().data(), static_cast<int>(loader.indices().size()), MPI_INT64_T,
                all.data(), static_cast<int>(loader.indices().size()), MPI_INT64_T, world.comm());
  std::sort(all.begin(), all.end());
  const Index distinct = std::unique(all.begin(), all.end()) - all.begin();
  expect(distinct == n, world, "the shards cover the whole dataset");
}

// Mean time of MPI_Allreduce on n floats, after a warm-up, as the example's buckets.
void bench(const dist::ProcessGroup& world) {
  for (const Index n : {Index{267410}, Index{812710}, Index{6553600}}) {
    std::vector<float> data(static_cast<std::size_t>(n), 1.0f);
    for (int i = 0; i < 5; ++i) dist::all_reduce(data.data(), n, world);
    const int reps = n > 1000000 ? 20 : 200;
    world.barrier();
    const double start = MPI_Wtime();
    for (int i = 0; i < reps; ++i) dist::all_reduce(data.data(), n, world);
    const double seconds = (MPI_Wtime() - start) / reps;
    if (world.rank() == 0)
      std::printf("%d ranks: MPI_Allreduce of %ld floats (%.2f MB): %.3f ms, %.2f GB/s\n",
                  world.world_size(), static_cast<long>(n), n * 4e-6, seconds * 1e3,
                  n * 4e-9 / seconds);
  }
}

}  // namespace

int main(int argc, char** argv) {
  dist::ProcessGroup world(&argc, &argv);
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) {
    bench(world);
    return 0;
  }
  try {
    check_broadcast(world);
    const Index params = 7 * 5 + 5 + 5 + 5 + 5 * 3 + 3;  // 68
    check_all_reduce(world, 25, 1);
    check_all_reduce(world, 64.0 / (1024 * 1024), (params + 15) / 16);  // 16 floats a bucket
    check_all_reduce(world, 1e-9, params);                              // one float a bucket
    check_backward(world);
    check_sampler(world);
  } catch (const std::exception& e) {
    std::printf("rank %d: error: %s\n", world.rank(), e.what());
    world.abort(1);
  }
  if (world.rank() == 0)
    std::printf(failures ? "%d check(s) FAILED\n" : "all checks passed\n", failures);
  return failures ? 1 : 0;
}
