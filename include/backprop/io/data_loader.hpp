// SPDX-License-Identifier: MIT
// backprop::io: DataLoader, seeded mini-batches over any in-memory dataset, and TensorDataset.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "../detail/error.hpp"
#include "../random.hpp"
#include "../tensor.hpp"

namespace backprop::detail {

// Elements per sample of an (N, ...) tensor's shape: the product of the sizes after the first.
inline Index sample_numel(const Shape& shape) {
  Index f = 1;
  for (std::size_t d = 1; d < shape.size(); ++d) f *= shape[d];
  return f;
}

// Whether a dataset keeps its inputs as bytes, pixels() (a tensor of std::uint8_t it owns), to
// be normalised by pixel_mean() and pixel_std() of type T (MnistDataset).
template <typename Dataset, typename T, typename = void>
struct has_pixels : std::false_type {};
template <typename Dataset, typename T>
struct has_pixels<Dataset, T,
                  std::void_t<decltype(std::declval<const Dataset&>().pixels()),
                              decltype(std::declval<const Dataset&>().pixel_mean()),
                              decltype(std::declval<const Dataset&>().pixel_std())>>
    : std::bool_constant<
          std::is_same_v<decltype(std::declval<const Dataset&>().pixels()),
                         const Tensor<std::uint8_t>&> &&
          std::is_same_v<std::decay_t<decltype(std::declval<const Dataset&>().pixel_mean())>, T> &&
          std::is_same_v<std::decay_t<decltype(std::declval<const Dataset&>().pixel_std())>, T>> {};

}  // namespace backprop::detail

namespace backprop::io {

/// A pixel byte b as an input, as torchvision's ToTensor() then Normalize((mean,), (std,))
/// compute it in float32: (b / 255 - mean) / std, in T. Two divisions, not a product by
/// precomputed reciprocals, whose rounding would differ from PyTorch's.
template <typename T>
T normalize_byte(std::uint8_t b, T mean, T std) {
  return (static_cast<T>(b) / T(255) - mean) / std;
}

/// 1 / stddev when multiplying by it gives the very bits of dividing by stddev, else 0: when
/// stddev is a power of two (0.5, as in the usual Normalize((0.5,), (0.5,))) whose reciprocal
/// is a T too. Then x / stddev and x * (1 / stddev) are the same real number, which IEEE
/// arithmetic rounds alike. A multiply costs a fraction of a division.
template <typename T>
T exact_reciprocal(T stddev) {
  int exponent = 0;
  const T inverse = T(1) / stddev;
  const bool power_of_two = std::abs(std::frexp(stddev, &exponent)) == T(0.5);
  return power_of_two && std::isfinite(inverse) && inverse != T(0) ? inverse : T(0);
}

/// Where a loader reads a dataset's inputs (N, ...): a tensor of `values`, or of `bytes` that
/// gathering normalises (normalize_byte), as MnistDataset keeps its pixels: one byte per input
/// instead of sizeof(T), in memory and in what each batch reads. It points at the tensor, as
/// the loader does at the targets: keep it alive and in place.
template <typename T>
struct InputSource {
  const Tensor<T>* values = nullptr;
  const Tensor<std::uint8_t>* bytes = nullptr;
  T mean = T(0), stddev = T(1);  // of the bytes

  static InputSource of(const Tensor<T>& t) { return {&t, nullptr, T(0), T(1)}; }
  static InputSource of(const Tensor<std::uint8_t>& t, T mean, T stddev) {
    return {nullptr, &t, mean, stddev};
  }
  // A temporary would dangle.
  static InputSource of(Tensor<T>&&) = delete;
  static InputSource of(Tensor<std::uint8_t>&&, T, T) = delete;

  const Shape& shape() const { return bytes ? bytes->shape() : values->shape(); }
  std::size_t sample_bytes() const {
    return static_cast<std::size_t>(detail::sample_numel(shape())) * (bytes ? 1 : sizeof(T));
  }
  const void* data() const {
    return bytes ? static_cast<const void*>(bytes->data()) : values->data();
  }
};

/// One mini-batch of B samples, B = batch_size except maybe for the last batch. The names
/// are MNIST's, the contents any dataset's: `images` holds the inputs (B, ...) and `labels`
/// the targets (B, ...), class indices (Target = std::int64_t, for CrossEntropyLoss) or
/// values of any shape (Target = float, ...).
template <typename T, typename Target = std::int64_t>
struct Batch {
  Tensor<T> images;       // inputs (B, ...)
  Tensor<Target> labels;  // targets (B, ...)
  Index size() const { return labels.dim() > 0 ? labels.size(0) : 0; }

  /// Refills this batch with samples rows[0 .. B) of (inputs, all_labels), B =
  /// image_shape[0]. The shapes come from the caller, which builds them once: switching
  /// between the full and the last batch then never allocates.
  void gather(const InputSource<T>& inputs, const Tensor<Target>& all_labels, const Index* rows,
              const Shape& image_shape, const Shape& label_shape) {
    images.resize(image_shape);
    labels.resize(label_shape);
    const Index b = image_shape[0], f = detail::sample_numel(image_shape);
    T* dst = images.data();
    if (inputs.bytes) {
      // Computed, not looked up in a table of 256 values: this loop is vectorised, a table's
      // lookups are not (they cost as much as copying floats; docs/benchmarks.md). The locals
      // keep `out` from aliasing mean and stddev. With a power of two for stddev, its exact
      // reciprocal takes the second division's place (normalize_byte with std 1 divides by 1,
      // exactly, and the compilers drop that division): the same bits, in 2.3 us instead of 4.3
      // for 64 x 784 bytes in cache with clang 14, 3.0 us either way with g++ 12 (AMD EPYC
      // Zen 5, AVX-512).
      const T mean = inputs.mean, sd = inputs.stddev, inverse = exact_reciprocal(sd);
      const std::uint8_t* all = inputs.bytes->data();
      for (Index i = 0; i < b; ++i) {
        const std::uint8_t* src = all + rows[i] * f;
        T* out = dst + i * f;
        if (inverse != T(0))
          for (Index j = 0; j < f; ++j) out[j] = normalize_byte(src[j], mean, T(1)) * inverse;
        else
          for (Index j = 0; j < f; ++j) out[j] = normalize_byte(src[j], mean, sd);
      }
    } else {
      const T* all = inputs.values->data();
      for (Index i = 0; i < b; ++i) std::copy_n(all + rows[i] * f, f, dst + i * f);
    }
    const Index lf = detail::sample_numel(label_shape);
    for (Index i = 0; i < b; ++i)
      std::copy_n(all_labels.data() + rows[i] * lf, lf, labels.data() + i * lf);
  }
};

/// An in-memory dataset: inputs (N, ...) and targets (N, ...), as
/// torch.utils.data.TensorDataset. It owns its tensors; a DataLoader points into them.
/// Example: TensorDataset<float, float> data(x, y); DataLoader<float, float> loader(data, 32);
template <typename T, typename Target = std::int64_t>
class TensorDataset {
 public:
  TensorDataset(Tensor<T> inputs, Tensor<Target> targets)
      : inputs_(std::move(inputs)), targets_(std::move(targets)) {
    detail::check(inputs_.dim() >= 1 && targets_.dim() >= 1 && inputs_.size(0) == targets_.size(0),
                  "TensorDataset", "expected inputs (N, ...) and targets (N, ...), got ",
                  detail::shape_str(inputs_.shape()), " and ", detail::shape_str(targets_.shape()));
  }
  Index size() const { return inputs_.size(0); }
  const Tensor<T>& inputs() const { return inputs_; }
  const Tensor<Target>& targets() const { return targets_; }
  // The names DataLoader reads, shared with MnistDataset.
  const Tensor<T>& images() const { return inputs_; }
  const Tensor<Target>& labels() const { return targets_; }

 private:
  Tensor<T> inputs_;
  Tensor<Target> targets_;
};

/// Mini-batches over (inputs, targets), as torch.utils.data.DataLoader(dataset, batch_size,
/// shuffle, drop_last) with a seeded generator. The dataset is any object with images() and
/// labels() (MnistDataset, whose pixels() it reads as bytes; TensorDataset) or a pair of
/// tensors (N, ...) and (N, ...). Epoch
/// e's order is a Fisher-Yates shuffle by Generator(shuffle_seed(seed, e)) of 0..N-1, so it
/// depends only on (seed, e): a resumed run calls set_epoch(e) and sees the very same
/// batches. The loader keeps pointers to the dataset's tensors (no copy; keep the dataset
/// alive and in place) and owns one Batch that batch(b) refills by gathering rows, so neither
/// set_epoch() nor batch() allocates. distributed::DistributedDataLoader is this loader
/// serving one rank's shard of each epoch's order.
/// Example:
///   DataLoader<float> loader(train, /*batch_size=*/64, /*shuffle=*/true, /*seed=*/1);
///   loader.set_epoch(epoch);
///   for (Index b = 0; b < loader.num_batches(); ++b) {
///     const Batch<float>& batch = loader.batch(b);  // batch.images (B, 784), batch.labels (B)
///   }
template <typename T, typename Target = std::int64_t>
class DataLoader {
 public:
  DataLoader(const Tensor<T>& images, const Tensor<Target>& labels, Index batch_size,
             bool shuffle = false, std::uint64_t seed = 0, bool drop_last = false)
      : DataLoader(InputSource<T>::of(images), labels, batch_size, shuffle, seed, drop_last,
                   nullptr, -1) {}
  // The loader points at the tensors: temporaries (such as MnistDataset::images()) would dangle.
  DataLoader(Tensor<T>&&, const Tensor<Target>&, Index, bool = false, std::uint64_t = 0,
             bool = false) = delete;
  DataLoader(const Tensor<T>&, Tensor<Target>&&, Index, bool = false, std::uint64_t = 0,
             bool = false) = delete;

  template <typename Dataset, typename = decltype(std::declval<const Dataset&>().images())>
  DataLoader(const Dataset& dataset, Index batch_size, bool shuffle = false, std::uint64_t seed = 0,
             bool drop_last = false)
      : DataLoader(input_source(dataset), dataset.labels(), batch_size, shuffle, seed, drop_last,
                   nullptr, -1) {}
  // The loader points into the dataset: a temporary would dangle.
  template <typename Dataset, typename = decltype(std::declval<const Dataset&>().images()),
            typename = std::enable_if_t<!std::is_lvalue_reference_v<Dataset>>>
  DataLoader(Dataset&&, Index, bool = false, std::uint64_t = 0, bool = false) = delete;

  /// Where a loader reads a dataset's inputs: its pixels(), normalised by pixel_mean() and
  /// pixel_std(), when it has them (MnistDataset), else its images() tensor.
  template <typename Dataset>
  static InputSource<T> input_source(const Dataset& dataset) {
    if constexpr (detail::has_pixels<Dataset, T>::value) {
      return InputSource<T>::of(dataset.pixels(), dataset.pixel_mean(), dataset.pixel_std());
    } else {
      static_assert(std::is_lvalue_reference_v<decltype(dataset.images())>,
                    "the loader points into the dataset: its images() must return a reference");
      return InputSource<T>::of(dataset.images());
    }
  }

  /// The seed of epoch e's shuffle: distinct epochs and seeds give unrelated generators.
  static std::uint64_t shuffle_seed(std::uint64_t seed, std::uint64_t epoch) {
    // splitmix64's first output for seed, plus epoch: Generator's own splitmix64 seeding
    // then spreads consecutive epochs over unrelated states.
    return detail::splitmix64(seed) + epoch;
  }

  /// Sets the epoch and, with shuffle, its order: 0..N-1 permuted by
  /// Generator(shuffle_seed(seed, epoch)), each i = N-1 .. 1 swapped with below(i + 1).
  void set_epoch(std::uint64_t epoch) {
    epoch_ = epoch;
    std::iota(order_.begin(), order_.end(), Index{0});
    if (shuffle_) {
      Generator gen(shuffle_seed(seed_, epoch));
      for (std::size_t i = order_.size(); i-- > 1;)
        std::swap(order_[i], order_[static_cast<std::size_t>(gen.below(i + 1))]);
    }
    if (shard_) shard_->select(order_, indices_);
  }
  std::uint64_t epoch() const { return epoch_; }
  bool shuffle() const { return shuffle_; }
  bool drop_last() const { return drop_last_; }

  Index num_batches() const { return num_batches_; }
  Index batch_size() const { return batch_size_; }
  /// Samples served in one epoch: N (this rank's shard for a distributed loader), or fewer
  /// with drop_last.
  Index num_samples() const {
    return std::min(static_cast<Index>(served().size()), num_batches_ * batch_size_);
  }
  /// This epoch's order of the whole dataset: sample order()[k] is the k-th one.
  const std::vector<Index>& order() const { return order_; }
  /// The samples served this epoch, in order: order() itself, or this rank's shard of it.
  const std::vector<Index>& indices() const { return served(); }

  /// Batch b of this epoch (0 <= b < num_batches()): samples indices()[b*B .. b*B + size)
  /// of the dataset. Always the same object, refilled: its contents change at the next call.
  const Batch<T, Target>& batch(Index b) {
    detail::check(b >= 0 && b < num_batches_, where_, "batch ", b, " out of range for ",
                  num_batches_, " batches");
    const bool last = b == num_batches_ - 1;
    batch_.gather(inputs_, *labels_, served().data() + b * batch_size_,
                  last ? last_shape_ : full_shape_, last ? last_labels_shape_ : full_labels_shape_);
    if (!last) prefetch(b + 1);
    return batch_;
  }

 private:
  // Asks the CPU to start loading batch b's inputs into its caches, so that they arrive while
  // the caller trains on the current batch: shuffled samples lie anywhere in the dataset
  // (188 MB for MNIST's training set as floats, 47 MB as bytes), and gathering them waited on
  // memory: with 4 MB streamed between batches, as a training step does, a batch of 64 floats
  // took 36-37 us to gather without this and 20-32 us with it (AMD EPYC Zen 5). Only a hint:
  // nothing is read.
  void prefetch(Index b) const {
#if defined(__GNUC__) || defined(__clang__)
    const std::size_t bytes = inputs_.sample_bytes();
    const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(inputs_.data());
    const Index* rows = served().data() + b * batch_size_;
    const Index count =
        std::min(batch_size_, static_cast<Index>(served().size()) - b * batch_size_);
    for (Index i = 0; i < count; ++i) {
      // Every 64-byte line the row touches, from the line its first byte is in.
      const std::uintptr_t row = base + static_cast<std::uintptr_t>(rows[i]) * bytes;
      for (std::uintptr_t line = row & ~std::uintptr_t(63); line < row + bytes; line += 64)
        __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 1);
    }
#else
    (void)b;
#endif
  }

 protected:
  // Chooses the samples a loader serves from each epoch's order (DistributedDataLoader: one
  // rank's shard). select() must not allocate once `out` has the capacity.
  struct Shard {
    virtual void select(const std::vector<Index>& order, std::vector<Index>& out) const = 0;
    virtual ~Shard() = default;
  };

  // With a shard, `served_count` samples per epoch are served; the derived constructor calls
  // set_epoch(0) once its shard can select.
  DataLoader(const InputSource<T>& inputs, const Tensor<Target>& labels, Index batch_size,
             bool shuffle, std::uint64_t seed, bool drop_last, const Shard* shard,
             Index served_count, const char* where = "DataLoader")
      : inputs_(inputs),
        labels_(&labels),
        batch_size_(batch_size),
        shuffle_(shuffle),
        drop_last_(drop_last),
        seed_(seed),
        shard_(shard),
        where_(where) {
    const Shape& images = inputs.shape();
    detail::check(!images.empty() && labels.dim() >= 1 && images[0] == labels.size(0), where,
                  "expected inputs (N, ...) and targets (N, ...), got ", detail::shape_str(images),
                  " and ", detail::shape_str(labels.shape()));
    detail::check(batch_size > 0, where, "batch_size must be > 0, got ", batch_size);
    const Index n = shard ? served_count : images[0];
    num_batches_ = drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
    // Both batch shapes are built once: resize() with a prebuilt Shape allocates nothing.
    const Index last =
        drop_last || num_batches_ == 0 ? batch_size : n - (num_batches_ - 1) * batch_size;
    // A batch_size beyond the samples makes one batch of them all (as PyTorch's loader); the
    // batch buffer is then sized for them, not for batch_size rows.
    full_shape_ = images;
    full_shape_[0] = std::min(batch_size, n);
    last_shape_ = images;
    last_shape_[0] = last;
    full_labels_shape_ = labels.shape();
    full_labels_shape_[0] = std::min(batch_size, n);
    last_labels_shape_ = labels.shape();
    last_labels_shape_[0] = last;
    batch_.images.resize(full_shape_);
    batch_.labels.resize(full_labels_shape_);
    order_.resize(static_cast<std::size_t>(images[0]));
    if (shard) {
      indices_.reserve(static_cast<std::size_t>(served_count));
    } else {
      set_epoch(0);
    }
  }

 private:
  const std::vector<Index>& served() const { return shard_ ? indices_ : order_; }

  InputSource<T> inputs_;
  const Tensor<Target>* labels_;
  Index batch_size_, num_batches_ = 0;
  bool shuffle_, drop_last_;
  std::uint64_t seed_, epoch_ = 0;
  const Shard* shard_;
  const char* where_;
  Shape full_shape_, last_shape_, full_labels_shape_, last_labels_shape_;
  std::vector<Index> order_, indices_;
  Batch<T, Target> batch_;
};

}  // namespace backprop::io
