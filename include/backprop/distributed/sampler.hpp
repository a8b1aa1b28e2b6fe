// SPDX-License-Identifier: MIT
// backprop::distributed: each rank's shard of every epoch (DistributedSampler) and its batches.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../detail/error.hpp"
#include "../io/mnist.hpp"
#include "../tensor.hpp"

namespace backprop::distributed {

/// Which samples of an epoch rank `rank` of `num_replicas` takes, as
/// torch.utils.data.distributed.DistributedSampler. The epoch's order is the same on every
/// rank (same seed, same epoch); it is padded by wrapping around to a multiple of W =
/// num_replicas (drop_last: cut to one instead), and rank r takes every W-th sample:
///   shard[k] = order[(k * W + r) mod N],   k < num_samples() = ceil(N / W)  (floor: drop_last)
/// Every rank gets the same count, so the same number of batches of the same sizes, and
/// the collectives of every step pair up. Padding repeats at most W - 1 samples per epoch
/// (the first ones of the order); drop_last skips at most W - 1 instead.
/// Strided rather than contiguous, so that batch b of the W ranks together (batch size B
/// each) is order[b*W*B, (b+1)*W*B): batch b of one process with batch size W*B. A
/// data-parallel run then sees the global batches a single process would.
/// Example: DistributedSampler s(60000, 2, rank); s.shard(loader.order(), my_indices);
class DistributedSampler {
 public:
  DistributedSampler(Index dataset_size, int num_replicas, int rank, bool drop_last = false)
      : size_(dataset_size), num_replicas_(num_replicas), rank_(rank) {
    detail::check(dataset_size >= 0, "DistributedSampler",
                            "dataset_size must be >= 0, got ", dataset_size);
    detail::check(num_replicas > 0 && rank >= 0 && rank < num_replicas,
                            "DistributedSampler", "expected 0 <= rank < num_replicas, got rank ",
                            rank, " of ", num_replicas);
    num_samples_ = drop_last ? size_ / num_replicas : (size_ + num_replicas - 1) / num_replicas;
  }

  /// Samples per rank and epoch, the same on every rank.
  Index num_samples() const { return num_samples_; }
  /// Samples per epoch over all ranks: num_samples() * num_replicas().
  Index total_size() const { return num_samples_ * num_replicas_; }
  int num_replicas() const { return num_replicas_; }
  int rank() const { return rank_; }

  /// This rank's samples of the epoch whose order (a permutation of 0..N-1) is given, into
  /// out, resized to num_samples(): no allocation once out has the capacity.
  void shard(const std::vector<Index>& order, std::vector<Index>& out) const {
    detail::check(static_cast<Index>(order.size()) == size_, "DistributedSampler::shard",
                            "order has ", order.size(), " entries, expected dataset_size = ", size_);
    out.resize(static_cast<std::size_t>(num_samples_));
    for (Index k = 0; k < num_samples_; ++k)
      out[static_cast<std::size_t>(k)] =
          order[static_cast<std::size_t>((k * num_replicas_ + rank_) % size_)];
  }

 private:
  Index size_, num_samples_ = 0;
  int num_replicas_, rank_;
};

/// io::DataLoader for one rank of a data-parallel job: the same per-epoch shuffle on every
/// rank (an io::DataLoader over the whole dataset, with the same seed, gives the order),
/// sharded by DistributedSampler, served in batches of batch_size. Every rank has the same
/// num_batches(), and its last batch the same size, so the collectives after each backward
/// pair up. With W ranks of batch size B the global batch is W * B, and batch b of all ranks
/// together is batch b of io::DataLoader(dataset, W * B, shuffle, seed), up to padding.
/// Like io::DataLoader it keeps pointers to the dataset and refills one Batch, so neither
/// set_epoch() nor batch() allocates.
/// Example:
///   DistributedDataLoader<float> loader(train, 64, world.world_size(), world.rank(), true, seed);
///   loader.set_epoch(epoch);
///   for (Index b = 0; b < loader.num_batches(); ++b) { const io::Batch<float>& x = loader.batch(b); }
template <typename T>
class DistributedDataLoader {
 public:
  DistributedDataLoader(const Tensor<T>& images, const Tensor<std::int64_t>& labels,
                        Index batch_size, int num_replicas, int rank, bool shuffle = false,
                        std::uint64_t seed = 0, bool drop_last = false)
      // The whole-dataset loader is only asked for order(): batch size 1 keeps its unused
      // batch buffer small.
      : order_(images, labels, 1, shuffle, seed),
        sampler_(labels.numel(), num_replicas, rank),
        images_(&images),
        labels_(&labels),
        batch_size_(batch_size) {
    detail::check(batch_size > 0, "DistributedDataLoader",
                            "batch_size must be > 0, got ", batch_size);
    const Index n = sampler_.num_samples(), f = images.size(1);
    num_batches_ = drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
    const Index last = drop_last || n % batch_size == 0 ? batch_size : n % batch_size;
    full_shape_ = {batch_size, f};
    last_shape_ = {last, f};
    full_labels_shape_ = {batch_size};
    last_labels_shape_ = {last};
    batch_.images.resize(full_shape_);
    batch_.labels.resize(full_labels_shape_);
    indices_.reserve(static_cast<std::size_t>(n));
    set_epoch(0);
  }
  DistributedDataLoader(const io::MnistDataset<T>& dataset, Index batch_size, int num_replicas,
                        int rank, bool shuffle = false, std::uint64_t seed = 0,
                        bool drop_last = false)
      : DistributedDataLoader(dataset.images(), dataset.labels(), batch_size, num_replicas, rank,
                              shuffle, seed, drop_last) {}
  // The loader points into the dataset: a temporary would dangle.
  DistributedDataLoader(io::MnistDataset<T>&&, Index, int, int, bool = false, std::uint64_t = 0,
                        bool = false) = delete;

  /// Epoch e's order, the same on every rank, and this rank's shard of it.
  void set_epoch(std::uint64_t epoch) {
    order_.set_epoch(epoch);
    sampler_.shard(order_.order(), indices_);
  }
  std::uint64_t epoch() const { return order_.epoch(); }

  Index num_batches() const { return num_batches_; }
  Index batch_size() const { return batch_size_; }
  /// This rank's samples per epoch (the last partial batch included unless drop_last).
  Index num_samples() const { return std::min(sampler_.num_samples(), num_batches_ * batch_size_); }
  const DistributedSampler& sampler() const { return sampler_; }
  /// This epoch's samples of this rank, in the order they are served.
  const std::vector<Index>& indices() const { return indices_; }

  /// Batch b of this epoch: rows indices()[b*B .. b*B + size) of the dataset. Always the
  /// same object, refilled.
  const io::Batch<T>& batch(Index b) {
    detail::check(b >= 0 && b < num_batches_, "DistributedDataLoader::batch", "batch ",
                            b, " out of range for ", num_batches_, " batches");
    const bool last = b == num_batches_ - 1;
    batch_.gather(*images_, *labels_, indices_.data() + b * batch_size_,
                  last ? last_shape_ : full_shape_, last ? last_labels_shape_ : full_labels_shape_);
    return batch_;
  }

 private:
  io::DataLoader<T> order_;  // the whole dataset's shuffle: every rank computes the same
  DistributedSampler sampler_;
  const Tensor<T>* images_;
  const Tensor<std::int64_t>* labels_;
  Index batch_size_, num_batches_ = 0;
  Shape full_shape_, last_shape_, full_labels_shape_, last_labels_shape_;
  std::vector<Index> indices_;
  io::Batch<T> batch_;
};

}  // namespace backprop::distributed
