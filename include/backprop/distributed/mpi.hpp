// SPDX-License-Identifier: MIT
// backprop::distributed: data-parallel training over MPI (process group, bucketed gradient
// all-reduce).
#pragma once

#if !__has_include(<mpi.h>)
#error "backprop/distributed/mpi.hpp needs MPI: link the CMake target backprop::mpi"
#endif
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "../detail/error.hpp"
#include "../module.hpp"

namespace backprop::detail {

template <typename U>
MPI_Datatype mpi_type() {
  static_assert(
      std::is_same_v<U, float> || std::is_same_v<U, double> || std::is_same_v<U, std::int64_t>,
      "backprop::distributed: float, double or int64 only");
  if constexpr (std::is_same_v<U, float>)
    return MPI_FLOAT;
  else if constexpr (std::is_same_v<U, double>)
    return MPI_DOUBLE;
  else
    return MPI_INT64_T;
}

// MPI's default handler aborts the job on error; a communicator set to return errors
// gets "<where>: <MPI's message>" instead.
inline void check_mpi(int rc, const char* where) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw std::runtime_error(
      detail::concat(where, ": ", std::string(text, static_cast<std::size_t>(length))));
}

}  // namespace backprop::detail

namespace backprop::distributed {

enum class ReduceOp { SUM, MIN, MAX };

/// The processes of one job (MPI_COMM_WORLD), as torch.distributed.init_process_group(
/// backend="mpi"): initialises MPI unless someone already did, and finalises it on
/// destruction if it initialised it. MPI calls must come from the thread that made it
/// (MPI_THREAD_FUNNELED): OpenMP threads inside Eigen's products never call MPI.
/// Example: ProcessGroup world(&argc, &argv); if (world.rank() == 0) std::puts("hello");
class ProcessGroup {
 public:
  explicit ProcessGroup(int* argc = nullptr, char*** argv = nullptr) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      detail::check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided),
                        "MPI_Init_thread");
      owner_ = true;
    }
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &world_size_);
  }
  ~ProcessGroup() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owner_ && !finalized) MPI_Finalize();
  }
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  MPI_Comm comm() const { return comm_; }
  void barrier() const { detail::check_mpi(MPI_Barrier(comm_), "ProcessGroup::barrier"); }
  /// Ends every process of the job (MPI_Abort): the way out when one rank fails, since
  /// the others would otherwise wait forever in their next collective.
  [[noreturn]] void abort(int code = 1) const {
    MPI_Abort(comm_, code);
    std::abort();  // MPI_Abort does not return; this tells the compiler so
  }

 private:
  MPI_Comm comm_ = MPI_COMM_WORLD;
  int rank_ = 0, world_size_ = 1;
  bool owner_ = false;
};

/// In place on every rank: data = op over ranks of data (torch.distributed.all_reduce).
/// Example: double sums[2] = {loss, correct}; all_reduce(sums, 2, world);
template <typename U>
void all_reduce(U* data, Index count, const ProcessGroup& group, ReduceOp op = ReduceOp::SUM) {
  detail::check(count >= 0 && count <= std::numeric_limits<int>::max(), "distributed::all_reduce",
                "count must be in [0, INT_MAX], got ", count);
  const MPI_Op mpi_op = op == ReduceOp::SUM ? MPI_SUM : op == ReduceOp::MIN ? MPI_MIN : MPI_MAX;
  detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count),
                                  detail::mpi_type<U>(), mpi_op, group.comm()),
                    "MPI_Allreduce");
}

/// Every rank's data becomes root's (torch.distributed.broadcast).
template <typename U>
void broadcast(U* data, Index count, const ProcessGroup& group, int root = 0) {
  detail::check(count >= 0 && count <= std::numeric_limits<int>::max(), "distributed::broadcast",
                "count must be in [0, INT_MAX], got ", count);
  detail::check_mpi(
      MPI_Bcast(data, static_cast<int>(count), detail::mpi_type<U>(), root, group.comm()),
      "MPI_Bcast");
}

/// What DistributedDataParallel has sent since construction or reset_stats().
struct CommStats {
  std::int64_t all_reduce_calls = 0;  // MPI_Allreduce calls on gradients
  std::int64_t all_reduce_bytes = 0;  // gradient bytes each rank contributed
  double all_reduce_seconds = 0;      // wall time inside them, waiting for slower ranks included
};

/// Data parallelism as torch.nn.parallel.DistributedDataParallel: every rank holds a
/// replica of the model, runs forward/backward on its own shard of the global batch, and
/// backward() ends by averaging the gradients over ranks, so that every optimizer step is
/// the same on every rank and the replicas stay identical (bit for bit: MPI_Allreduce hands
/// every rank the same sums, and the rest is deterministic).
///   construction: rank 0's parameters and buffers are broadcast to every rank;
///   backward(dy): module.backward(dy), then grad = (sum over ranks of grad) / world_size.
/// With equal local batches, the average of the ranks' mean-loss gradients is the gradient
/// of the mean loss over the global batch. Gradients are packed into one bucket of at most
/// bucket_cap_mb (25 MB, PyTorch's default), allocated once, so a step costs
/// ceil(gradient bytes / cap) MPI_Allreduce calls rather than one per tensor.
/// Buffers (BatchNorm's running_mean/var) are not synchronised after construction: each
/// rank keeps statistics of its own batches, as DDP with broadcast_buffers=False;
/// broadcast_buffers() copies rank 0's. Keep the module in place: this keeps pointers.
/// Proof: tests/distributed/check_ddp.cpp   Guide: docs/distributed.md
/// Example: DistributedDataParallel<float> ddp(model, world); ddp.backward(loss.backward());
template <typename T>
class DistributedDataParallel : public Module<T> {
 public:
  DistributedDataParallel(Module<T>& module, const ProcessGroup& group, double bucket_cap_mb = 25)
      : module_(&module), group_(&group) {
    detail::check(bucket_cap_mb > 0, "DistributedDataParallel", "bucket_cap_mb must be > 0, got ",
                  bucket_cap_mb);
    for (const StateEntry<T>& e : module.state_dict()) {
      if (e.grad) grads_.push_back(e.grad);
      if (auto* t = std::get_if<Tensor<T>*>(&e.tensor))
        (e.grad ? state_ : buffers_).push_back(*t);
      else
        int_buffers_.push_back(std::get<Tensor<std::int64_t>*>(e.tensor));
    }
    // Counted from the parameters: a gradient may be none (zero_grad(true)) until backward.
    const Index grad_numel = numel(state_), int_numel = numel(int_buffers_);
    // A cap of at least one element, and at most INT_MAX elements (MPI's count is an int).
    const double cap = bucket_cap_mb * 1024 * 1024 / sizeof(T);
    cap_ = static_cast<Index>(std::clamp(cap, 1.0, double(std::numeric_limits<int>::max())));
    bucket_.resize(static_cast<std::size_t>(std::min(std::max(grad_numel, Index{1}), cap_)));
    int_bucket_.resize(static_cast<std::size_t>(int_numel));
    state_.insert(state_.end(), buffers_.begin(), buffers_.end());  // parameters, then buffers

    // Replicas that disagree on sizes would pair unrelated collectives: check first.
    std::int64_t sizes[3] = {grad_numel, numel(state_), int_numel}, root[3];
    std::copy_n(sizes, 3, root);
    broadcast(root, 3, group);
    std::int64_t mismatch = !std::equal(sizes, sizes + 3, root);
    all_reduce(&mismatch, 1, group, ReduceOp::MAX);
    detail::check(mismatch == 0, "DistributedDataParallel", "the replicas differ: rank ",
                  group.rank(), " has ", sizes[0], " parameter elements, rank 0 has ", root[0],
                  " (same model everywhere?)");
    broadcast_state();
  }

  const Tensor<T>& forward(const Tensor<T>& input) override { return module_->forward(input); }

  // dL/dparam of this rank's batch, then averaged over ranks; dL/dx stays local.
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    const Tensor<T>& grad_input = module_->backward(grad_output);
    all_reduce_gradients();
    return grad_input;
  }

  /// Averages every parameter gradient over the ranks, bucket by bucket. backward() calls
  /// it; call it yourself after driving module().backward() directly. Averaging is linear,
  /// so accumulating two backwards and averaging each time still gives avg(g1) + avg(g2).
  void all_reduce_gradients() {
    // A none gradient (zero_grad(true), no backward through it) takes part as zeros, so
    // that every rank packs the same number of elements; on one rank too, so that a job
    // behaves the same on any number of ranks.
    for (std::size_t i = 0; i < grads_.size(); ++i)
      if (!accumulates_into(*grads_[i], *state_[i])) grads_[i]->zero_();
    const int world = group_->world_size();
    if (world == 1) return;  // nothing to average: a 1-rank job costs no copies
    for_each_chunk(grads_, [&](T* data, Index n) {
      const double start = MPI_Wtime();
      all_reduce(data, n, *group_);
      stats_.all_reduce_seconds += MPI_Wtime() - start;
      ++stats_.all_reduce_calls;
      stats_.all_reduce_bytes += n * static_cast<Index>(sizeof(T));
      // sum / W, correctly rounded, so identical sums give identical averages everywhere.
      for (Index i = 0; i < n; ++i) data[i] /= T(world);
    });
  }

  /// Every rank's parameters and buffers become rank 0's (construction does this).
  void broadcast_state() {
    for_each_chunk(state_, [&](T* data, Index n) { broadcast(data, n, *group_); });
    broadcast_int_buffers();
  }
  /// Every rank's buffers (running_mean, running_var, num_batches_tracked) become rank 0's.
  void broadcast_buffers() {
    for_each_chunk(buffers_, [&](T* data, Index n) { broadcast(data, n, *group_); });
    broadcast_int_buffers();
  }

  void visit(StateVisitor<T>& visitor) override { visitor.module("module", *module_); }
  Module<T>& module() { return *module_; }
  const ProcessGroup& process_group() const { return *group_; }
  /// Elements per bucket, and buckets (MPI_Allreduce calls) per gradient average.
  Index bucket_numel() const { return static_cast<Index>(bucket_.size()); }
  Index num_buckets() const { return (numel(state_) - numel(buffers_) + cap_ - 1) / cap_; }
  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = CommStats{}; }

 private:
  template <typename U>
  static Index numel(const std::vector<Tensor<U>*>& tensors) {
    Index n = 0;
    for (const Tensor<U>* t : tensors) n += t->numel();
    return n;
  }

  // Runs collective(bucket, n) on the concatenation of the tensors, cap_ elements at a
  // time: pack a chunk into the bucket, communicate, copy it back. A tensor may straddle
  // two chunks. PyTorch fills buckets in reverse order so that communication overlaps
  // the rest of backward; here backward is one call, so plain order loses nothing.
  template <typename Collective>
  void for_each_chunk(const std::vector<Tensor<T>*>& tensors, Collective collective) {
    std::size_t in_tensor = 0, out_tensor = 0;
    Index in_offset = 0, out_offset = 0, left = numel(tensors);
    // Copies n elements between the concatenation (at tensor, offset) and the bucket.
    const auto copy = [&](std::size_t& tensor, Index& offset, Index n, bool to_bucket) {
      T* b = bucket_.data();
      while (n > 0) {  // an empty tensor gives k = 0 and is stepped over
        Tensor<T>& t = *tensors[tensor];
        const Index k = std::min(n, t.numel() - offset);
        if (to_bucket)
          std::copy_n(t.data() + offset, k, b);
        else
          std::copy_n(b, k, t.data() + offset);
        b += k, n -= k, offset += k;
        if (offset == t.numel()) ++tensor, offset = 0;
      }
    };
    while (left > 0) {
      const Index n = std::min(left, static_cast<Index>(bucket_.size()));
      copy(in_tensor, in_offset, n, true);
      collective(bucket_.data(), n);
      copy(out_tensor, out_offset, n, false);
      left -= n;
    }
  }

  void broadcast_int_buffers() {
    std::int64_t* b = int_bucket_.data();
    for (const Tensor<std::int64_t>* t : int_buffers_) b = std::copy_n(t->data(), t->numel(), b);
    broadcast(int_bucket_.data(), static_cast<Index>(int_bucket_.size()), *group_);
    b = int_bucket_.data();
    for (Tensor<std::int64_t>* t : int_buffers_) {
      std::copy_n(b, t->numel(), t->data());
      b += t->numel();
    }
  }

  Module<T>* module_;
  const ProcessGroup* group_;
  std::vector<Tensor<T>*> grads_, state_, buffers_;  // state_: parameters then buffers
  std::vector<Tensor<std::int64_t>*> int_buffers_;
  Index cap_ = 1;
  std::vector<T> bucket_;                 // the one gradient/state bucket, allocated once
  std::vector<std::int64_t> int_bucket_;  // num_batches_tracked and other int64 buffers
  CommStats stats_;
};

}  // namespace backprop::distributed
