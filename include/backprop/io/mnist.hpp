// SPDX-License-Identifier: MIT
// backprop::io: MnistDataset (MNIST-format IDX files, normalised) and a batching DataLoader.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "../detail/error.hpp"
#include "../random.hpp"
#include "../tensor.hpp"
#include "idx.hpp"

namespace backprop::io {

/// A labelled image dataset in MNIST's IDX format (MNIST, Fashion-MNIST, KMNIST, ...), as
/// torchvision.datasets.MNIST(root, train, transform=Compose([ToTensor(),
/// Normalize((mean,), (std,))])): every pixel byte b becomes x = (b / 255 - mean) / std,
/// computed in T as PyTorch does in float32. Images are flattened to (N, rows * cols).
/// Example: MnistDataset<float> train("data/mnist", /*train=*/true);
template <typename T>
class MnistDataset {
 public:
  using Scalar = T;

  /// Loads the training (train-*) or test (t10k-*) split from a directory holding
  /// {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte, each raw or with a
  /// .gz suffix, or spelt with a dot (train-images.idx3-ubyte). Raw files win over .gz.
  MnistDataset(const std::string& root, bool train, T mean = T(0.5), T std = T(0.5),
               Index num_classes = 10)
      : MnistDataset(find_files(root, train), mean, std, num_classes) {}

  /// Loads an explicit pair of files (a named function: a second string would convert to
  /// the constructor's bool).
  static MnistDataset from_files(const std::string& images_path, const std::string& labels_path,
                                 T mean = T(0.5), T std = T(0.5), Index num_classes = 10) {
    return MnistDataset(std::make_pair(images_path, labels_path), mean, std, num_classes);
  }

  /// Number of samples N.
  Index size() const { return labels_.numel(); }
  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  Index num_features() const { return rows_ * cols_; }
  Index num_classes() const { return num_classes_; }
  /// (N, rows * cols), normalised.
  const Tensor<T>& images() const { return images_; }
  /// (N), class indices in [0, num_classes).
  const Tensor<std::int64_t>& labels() const { return labels_; }
  const std::string& images_path() const { return images_path_; }
  const std::string& labels_path() const { return labels_path_; }

  /// The paths of a split's images and labels in root (see the constructor); throws
  /// DataError naming the first file not found and the spellings tried.
  static std::pair<std::string, std::string> find_files(const std::string& root, bool train) {
    std::string images = find_file(root, train, "images", "idx3");  // images first, always
    return {std::move(images), find_file(root, train, "labels", "idx1")};
  }

  /// One file of a split: kind "images" with tag "idx3", or "labels" with "idx1".
  static std::string find_file(const std::string& root, bool train, const std::string& kind,
                               const std::string& tag) {
    const std::string dir = root.empty() || root.back() == '/' ? root : root + "/";
    const std::string stem = std::string(train ? "train" : "t10k") + "-" + kind;
    for (const char* ext : {"", ".gz"}) {
      for (const char* sep : {"-", "."}) {
        const std::string path = dir + stem + sep + tag + "-ubyte" + ext;
        if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
          std::fclose(f);
          return path;
        }
      }
    }
    detail::idx_fail(dir + stem + "-" + tag + "-ubyte",
                      "cannot open: No such file or directory (nor .gz, nor the " + stem + "." +
                          tag + "-ubyte spelling); scripts/fetch-mnist.sh downloads MNIST");
  }

 private:
  MnistDataset(std::pair<std::string, std::string> paths, T mean, T std, Index num_classes)
      : images_path_(std::move(paths.first)),
        labels_path_(std::move(paths.second)),
        num_classes_(num_classes) {
    const std::string& images_path = images_path_;
    const std::string& labels_path = labels_path_;
    detail::check(std > T(0), "MnistDataset", "std must be > 0, got ", std);
    detail::check(num_classes > 0, "MnistDataset", "num_classes must be > 0, got ",
                            num_classes);
    const IdxArray labels = read_idx(labels_path);
    if (labels.shape.size() != 1)
      detail::idx_fail(labels_path,
                        detail::concat("expected labels of rank 1 (N), got shape ",
                                                 detail::shape_str(labels.shape)));
    // The labels are checked first: they are small, and a bad one then costs no image read.
    for (std::size_t i = 0; i < labels.data.size(); ++i)
      if (labels.data[i] >= num_classes)
        detail::idx_fail(labels_path,
                          detail::concat("label ", int{labels.data[i]}, " at index ", i,
                                                   " is outside [0, ", num_classes, ")"));
    const IdxArray images = read_idx(images_path);
    if (images.shape.size() != 3)
      detail::idx_fail(images_path, detail::concat(
                                         "expected images of rank 3 (N, rows, cols), got shape ",
                                         detail::shape_str(images.shape)));
    if (images.shape[0] != labels.shape[0])
      throw DataError(detail::concat(images_path, " has ", images.shape[0],
                                               " images but ", labels_path, " has ",
                                               labels.shape[0], " labels"));
    rows_ = images.shape[1];
    cols_ = images.shape[2];

    // One table entry per byte value, so every pixel gets exactly the same rounding.
    T table[256];
    for (int b = 0; b < 256; ++b) table[b] = (static_cast<T>(b) / T(255) - mean) / std;
    images_.resize({images.shape[0], rows_ * cols_});
    std::transform(images.data.begin(), images.data.end(), images_.begin(),
                   [&table](std::uint8_t b) { return table[b]; });
    labels_.resize({labels.shape[0]});
    std::copy(labels.data.begin(), labels.data.end(), labels_.begin());
  }

  std::string images_path_, labels_path_;
  Index num_classes_ = 10, rows_ = 0, cols_ = 0;
  Tensor<T> images_;
  Tensor<std::int64_t> labels_;
};

/// One mini-batch: B rows of the dataset, B = batch_size except maybe for the last batch.
template <typename T>
struct Batch {
  Tensor<T> images;             // (B, F)
  Tensor<std::int64_t> labels;  // (B)
  Index size() const { return labels.numel(); }

  /// Refills this batch with rows[0 .. B) of (all_images, all_labels), B = image_shape[0].
  /// The shapes come from the caller, which builds them once: switching between the full
  /// and the last batch then never allocates.
  void gather(const Tensor<T>& all_images, const Tensor<std::int64_t>& all_labels,
              const Index* rows, const Shape& image_shape, const Shape& label_shape) {
    images.resize(image_shape);
    labels.resize(label_shape);
    const Index f = image_shape[1];
    const T* src = all_images.data();
    T* dst = images.data();
    for (Index i = 0; i < image_shape[0]; ++i) {
      std::copy_n(src + rows[i] * f, f, dst + i * f);
      labels[i] = all_labels[rows[i]];
    }
  }
};

/// Mini-batches over (images, labels), as torch.utils.data.DataLoader(dataset, batch_size,
/// shuffle, drop_last) with a seeded generator. Epoch e's order is a Fisher-Yates shuffle by
/// Generator(shuffle_seed(seed, e)) of 0..N-1, so it depends only on (seed, e): a resumed
/// run calls set_epoch(e) and sees the very same batches. The loader keeps pointers to the
/// dataset's tensors (no copy; keep the dataset alive and in place) and owns one Batch that
/// batch(b) refills by gathering rows, so neither set_epoch() nor batch() allocates.
/// Example:
///   DataLoader<float> loader(train, /*batch_size=*/64, /*shuffle=*/true, /*seed=*/1);
///   loader.set_epoch(epoch);
///   for (Index b = 0; b < loader.num_batches(); ++b) {
///     const Batch<float>& batch = loader.batch(b);  // batch.images (B, 784), batch.labels (B)
///   }
template <typename T>
class DataLoader {
 public:
  DataLoader(const Tensor<T>& images, const Tensor<std::int64_t>& labels, Index batch_size,
             bool shuffle = false, std::uint64_t seed = 0, bool drop_last = false)
      : images_(&images),
        labels_(&labels),
        batch_size_(batch_size),
        shuffle_(shuffle),
        drop_last_(drop_last),
        seed_(seed) {
    detail::check(
        images.dim() == 2 && labels.dim() == 1 && images.size(0) == labels.size(0), "DataLoader",
        "expected images (N, F) and labels (N), got ", detail::shape_str(images.shape()),
        " and ", detail::shape_str(labels.shape()));
    detail::check(batch_size > 0, "DataLoader", "batch_size must be > 0, got ",
                            batch_size);
    const Index n = labels.numel(), f = images.size(1);
    num_batches_ = drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
    // Both batch shapes are built once: resize() with a prebuilt Shape allocates nothing.
    const Index last = drop_last ? batch_size : n - (num_batches_ - 1) * batch_size;
    full_shape_ = {batch_size, f};
    last_shape_ = {num_batches_ > 0 ? last : batch_size, f};
    full_labels_shape_ = {batch_size};
    last_labels_shape_ = {last_shape_[0]};
    batch_.images.resize(full_shape_);
    batch_.labels.resize(full_labels_shape_);
    order_.resize(static_cast<std::size_t>(n));
    set_epoch(0);
  }
  DataLoader(const MnistDataset<T>& dataset, Index batch_size, bool shuffle = false,
             std::uint64_t seed = 0, bool drop_last = false)
      : DataLoader(dataset.images(), dataset.labels(), batch_size, shuffle, seed, drop_last) {}
  // The loader points into the dataset: a temporary would dangle.
  DataLoader(MnistDataset<T>&&, Index, bool = false, std::uint64_t = 0, bool = false) = delete;

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
    if (!shuffle_) return;
    Generator gen(shuffle_seed(seed_, epoch));
    for (std::size_t i = order_.size(); i-- > 1;)
      std::swap(order_[i], order_[static_cast<std::size_t>(gen.below(i + 1))]);
  }
  std::uint64_t epoch() const { return epoch_; }
  bool shuffle() const { return shuffle_; }
  bool drop_last() const { return drop_last_; }

  Index num_batches() const { return num_batches_; }
  Index batch_size() const { return batch_size_; }
  /// Samples in one epoch: N, or fewer with drop_last.
  Index num_samples() const { return std::min(labels_->numel(), num_batches_ * batch_size_); }
  /// This epoch's order: sample order()[k] is the k-th one served.
  const std::vector<Index>& order() const { return order_; }

  /// Batch b of this epoch (0 <= b < num_batches()): rows order()[b*B .. b*B + size) of the
  /// dataset. Always the same object, refilled: its contents change at the next call.
  const Batch<T>& batch(Index b) {
    detail::check(b >= 0 && b < num_batches_, "DataLoader::batch", "batch ", b,
                            " out of range for ", num_batches_, " batches");
    const bool last = b == num_batches_ - 1;
    batch_.gather(*images_, *labels_, order_.data() + b * batch_size_,
                  last ? last_shape_ : full_shape_, last ? last_labels_shape_ : full_labels_shape_);
    return batch_;
  }

 private:
  const Tensor<T>* images_;
  const Tensor<std::int64_t>* labels_;
  Index batch_size_, num_batches_ = 0;
  bool shuffle_, drop_last_;
  std::uint64_t seed_, epoch_ = 0;
  Shape full_shape_, last_shape_, full_labels_shape_, last_labels_shape_;
  std::vector<Index> order_;
  Batch<T> batch_;
};

}  // namespace backprop::io
