// SPDX-License-Identifier: MIT
// backprop::distributed: each rank's shard of every epoch (DistributedSampler) and its batches.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "../detail/error.hpp"
#include "../io/data_loader.hpp"
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
    detail::check(dataset_size >= 0, "DistributedSampler", "dataset_size must be >= 0, got ",
                  dataset_size);
    detail::check(num_replicas > 0 && rank >= 0 && rank < num_replicas, "DistributedSampler",
                  "expected 0 <= rank < num_replicas, got rank ", rank, " of ", num_replicas);
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

/// io::DataLoader for one rank of a data-parallel job: the loader's per-epoch shuffle of the
/// whole dataset, the same on every rank (same seed, same epoch), sharded by
/// DistributedSampler and served in batches of batch_size. Every rank has the same
/// num_batches(), and its last batch the same size, so the collectives after each backward
/// pair up. With W ranks of batch size B the global batch is W * B, and batch b of all ranks
/// together is batch b of io::DataLoader(dataset, W * B, shuffle, seed), up to padding.
/// Like io::DataLoader it keeps pointers to the dataset and refills one Batch, so neither
/// set_epoch() nor batch() allocates.
/// Example:
///   DistributedDataLoader<float> loader(train, 64, world.world_size(), world.rank(), true, seed);
///   loader.set_epoch(epoch);
///   for (Index b = 0; b < loader.num_batches(); ++b) { const io::Batch<float>& x =
///   loader.batch(b); }
template <typename T, typename Target = std::int64_t>
class DistributedDataLoader : public io::DataLoader<T, Target> {
 public:
  DistributedDataLoader(const Tensor<T>& images, const Tensor<Target>& labels, Index batch_size,
                        int num_replicas, int rank, bool shuffle = false, std::uint64_t seed = 0,
                        bool drop_last = false)
      : DistributedDataLoader(io::InputSource<T>::of(images), labels, batch_size, num_replicas,
                              rank, shuffle, seed, drop_last) {}
  // The loader points at the tensors: temporaries (such as MnistDataset::images()) would dangle.
  DistributedDataLoader(Tensor<T>&&, const Tensor<Target>&, Index, int, int, bool = false,
                        std::uint64_t = 0, bool = false) = delete;
  DistributedDataLoader(const Tensor<T>&, Tensor<Target>&&, Index, int, int, bool = false,
                        std::uint64_t = 0, bool = false) = delete;
  template <typename Dataset, typename = decltype(std::declval<const Dataset&>().images())>
  DistributedDataLoader(const Dataset& dataset, Index batch_size, int num_replicas, int rank,
                        bool shuffle = false, std::uint64_t seed = 0, bool drop_last = false)
      : DistributedDataLoader(io::DataLoader<T, Target>::input_source(dataset), dataset.labels(),
                              batch_size, num_replicas, rank, shuffle, seed, drop_last) {}
  // The loader points into the dataset: a temporary would dangle.
  template <typename Dataset, typename = decltype(std::declval<const Dataset&>().images()),
            typename = std::enable_if_t<!std::is_lvalue_reference_v<Dataset>>>
  DistributedDataLoader(Dataset&&, Index, int, int, bool = false, std::uint64_t = 0,
                        bool = false) = delete;
  // The base loader points at this object's shard.
  DistributedDataLoader(const DistributedDataLoader&) = delete;
  DistributedDataLoader& operator=(const DistributedDataLoader&) = delete;

  const DistributedSampler& sampler() const { return shard_.sampler; }

 private:
  struct RankShard : io::DataLoader<T, Target>::Shard {
    explicit RankShard(const DistributedSampler& s) : sampler(s) {}
    void select(const std::vector<Index>& order, std::vector<Index>& out) const override {
      sampler.shard(order, out);
    }
    DistributedSampler sampler;
  };

  DistributedDataLoader(const io::InputSource<T>& inputs, const Tensor<Target>& labels,
                        Index batch_size, int num_replicas, int rank, bool shuffle,
                        std::uint64_t seed, bool drop_last)
      : DistributedDataLoader(
            DistributedSampler(labels.dim() >= 1 ? labels.size(0) : 0, num_replicas, rank), inputs,
            labels, batch_size, shuffle, seed, drop_last) {}
  DistributedDataLoader(const DistributedSampler& sampler, const io::InputSource<T>& inputs,
                        const Tensor<Target>& labels, Index batch_size, bool shuffle,
                        std::uint64_t seed, bool drop_last)
      : io::DataLoader<T, Target>(inputs, labels, batch_size, shuffle, seed, drop_last, &shard_,
                                  sampler.num_samples(), "DistributedDataLoader"),
        shard_(sampler) {
    this->set_epoch(0);
  }

  RankShard shard_;
};

}  // namespace backprop::distributed
