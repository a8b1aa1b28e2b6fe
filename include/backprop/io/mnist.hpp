// SPDX-License-Identifier: MIT
// backprop::io: MnistDataset, MNIST-format IDX files, kept as bytes and normalised as batches
// are gathered (batches: data_loader.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "../detail/error.hpp"
#include "../random.hpp"
#include "../tensor.hpp"
#include "data_loader.hpp"  // DataLoader and Batch were defined here: includes keep working
#include "idx.hpp"

namespace backprop::io {

/// A labelled image dataset in MNIST's IDX format (MNIST, Fashion-MNIST, KMNIST, ...), as
/// torchvision.datasets.MNIST(root, train, transform=Compose([ToTensor(),
/// Normalize((mean,), (std,))])): every pixel byte b becomes x = (b / 255 - mean) / std,
/// computed in T as PyTorch does in float32. Images are flattened to (N, rows * cols).
/// The pixels stay bytes, and a DataLoader normalises them as it gathers each batch: one byte
/// per input instead of sizeof(T), in memory (47 MB for MNIST's training set, not 188 as
/// floats) and in what each batch reads.
/// Example: MnistDataset<float> train("data/mnist", /*train=*/true);
template <typename T>
class MnistDataset {
 public:
  using Scalar = T;

  /// Loads the training (train-*) or test (t10k-*) split from a directory holding
  /// {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte, each raw or with a
  /// .gz suffix, or spelt with a dot (train-images.idx3-ubyte). Raw files win over .gz.
  /// Failing those, a name with a prefix, "test" standing for t10k, as EMNIST's
  /// emnist-letters-{train,test}-{images-idx3,labels-idx1}-ubyte.gz (one dataset per directory).
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
  /// (N, rows * cols), the bytes as read.
  const Tensor<std::uint8_t>& pixels() const { return pixels_; }
  /// A byte b stands for the input normalize_byte(b, pixel_mean(), pixel_std()) (data_loader.hpp).
  T pixel_mean() const { return mean_; }
  T pixel_std() const { return std_; }
  /// (N, rows * cols), normalised: a new tensor on each call (loaders read pixels() instead,
  /// and refuse this temporary).
  Tensor<T> images() const {
    Tensor<T> out(pixels_.shape());
    std::transform(
        pixels_.begin(), pixels_.end(), out.begin(),
        [mean = mean_, sd = std_](std::uint8_t b) { return normalize_byte(b, mean, sd); });
    return out;
  }
  /// (N), class indices in [0, num_classes).
  const Tensor<std::int64_t>& labels() const { return labels_; }
  const std::string& images_path() const { return images_path_; }
  const std::string& labels_path() const { return labels_path_; }

  /// The paths of a split's images and labels in root (see the constructor); throws
  /// DataError naming the first file not found and the spellings tried.
  static std::pair<std::string, std::string> find_files(const std::string& root, bool train) {
    std::string images = find_file(root, train, "images", "idx3");  // images first, always
    std::string labels = find_file(root, train, "labels", "idx1");
    // Both of one dataset: their names agree up to "images" and "labels" ("test" as "t10k").
    const auto key = [](const std::string& path, const char* kind) {
      const std::string name = std::filesystem::path(path).filename().string();
      std::string k = name.substr(0, name.rfind(kind));
      if (ends_with(k, "test-")) k.replace(k.size() - 5, 4, "t10k");
      return k;
    };
    if (key(images, "images") != key(labels, "labels"))
      detail::idx_fail(images, "its labels are not beside it: " + labels +
                                   " is of another dataset; keep one dataset per directory");
    return {std::move(images), std::move(labels)};
  }

  /// One file of a split: kind "images" with tag "idx3", or "labels" with "idx1".
  static std::string find_file(const std::string& root, bool train, const std::string& kind,
                               const std::string& tag) {
    std::error_code ec;
    const std::string shown = root.empty() ? "." : root;  // the directory, as errors name it
    if (!root.empty() && !std::filesystem::is_directory(root, ec))
      detail::idx_fail(root, std::filesystem::exists(root, ec)
                                 ? "not a directory"
                                 : "no such directory; scripts/fetch-mnist.sh downloads MNIST");
    const std::string dir = root.empty() || root.back() == '/' ? root : root + "/";
    const std::string stem = std::string(train ? "train" : "t10k") + "-" + kind;
    // The first name that exists, whatever it is: read_idx then says why it cannot be read
    // (not opened here: opening a FIFO would wait for a writer).
    for (const char* ext : {"", ".gz"}) {
      for (const char* sep : {"-", "."}) {
        const std::string path = dir + stem + sep + tag + "-ubyte" + ext;
        if (std::filesystem::exists(path, ec)) return path;
      }
    }
    // Else a name with a prefix, and "test" for t10k, as EMNIST's
    // emnist-letters-test-images-idx3-ubyte.gz. Two such datasets in one directory would
    // make the choice a guess, so that is refused.
    std::vector<std::string> found;
    std::filesystem::directory_iterator it(shown, ec), end;
    for (; !ec && it != end; it.increment(ec)) {  // increment(ec): errors end the listing
      const std::string name = it->path().filename().string();
      if (prefixed_name(name, train, kind, tag)) found.push_back(name);
    }
    if (ec) detail::idx_fail(shown, "cannot list it: " + ec.message());
    std::sort(found.begin(), found.end());
    // Raw wins over .gz, as above: "x" sorts just before "x.gz".
    for (std::size_t i = 0; i + 1 < found.size(); ++i)
      if (found[i + 1] == found[i] + ".gz") found.erase(found.begin() + std::ptrdiff_t(i) + 1);
    if (found.size() == 1) return dir + found[0];
    if (found.size() > 1)
      detail::idx_fail(
          shown,
          detail::concat("holds several files that could be the ", train ? "training " : "test ",
                         kind, " (", found[0], ", ", found[1], (found.size() > 2 ? ", ..." : ""),
                         "): keep one dataset, in one spelling, per directory"));
    detail::idx_fail(dir + stem + "-" + tag + "-ubyte",
                     "cannot open: No such file or directory (nor .gz, nor the " + stem + "." +
                         tag + "-ubyte spelling, nor a prefixed name as EMNIST's); " +
                         "scripts/fetch-mnist.sh downloads MNIST");
  }

 private:
  // name is [prefix]{train|t10k|test}-<kind>{-|.}<tag>-ubyte[.gz], the prefix empty or
  // ending in '-', '_' or '.'.
  static bool prefixed_name(std::string name, bool train, const std::string& kind,
                            const std::string& tag) {
    const auto cut_suffix = [&name](const std::string& suffix) {
      if (!ends_with(name, suffix)) return false;
      name.resize(name.size() - suffix.size());
      return true;
    };
    cut_suffix(".gz");
    if (!cut_suffix(tag + "-ubyte") || !(cut_suffix("-") || cut_suffix("."))) return false;
    if (!cut_suffix("-" + kind)) return false;
    if (!(train ? cut_suffix("train") : (cut_suffix("t10k") || cut_suffix("test")))) return false;
    return name.empty() || name.back() == '-' || name.back() == '_' || name.back() == '.';
  }

  static bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  }

  MnistDataset(std::pair<std::string, std::string> paths, T mean, T std, Index num_classes)
      : images_path_(std::move(paths.first)),
        labels_path_(std::move(paths.second)),
        num_classes_(num_classes),
        mean_(mean),
        std_(std) {
    const std::string& images_path = images_path_;
    const std::string& labels_path = labels_path_;
    detail::check(std > T(0), "MnistDataset", "std must be > 0, got ", std);
    detail::check(num_classes > 0, "MnistDataset", "num_classes must be > 0, got ", num_classes);
    const IdxArray labels = read_idx(labels_path);
    if (labels.shape.size() != 1)
      detail::idx_fail(labels_path, detail::concat("expected labels of rank 1 (N), got shape ",
                                                   detail::shape_str(labels.shape)));
    // The labels are checked first: they are small, and a bad one then costs no image read.
    for (std::size_t i = 0; i < labels.data.size(); ++i)
      if (labels.data[i] >= num_classes)
        detail::idx_fail(labels_path, detail::concat("label ", int{labels.data[i]}, " at index ", i,
                                                     " is outside [0, ", num_classes, ")"));
    const IdxArray images = read_idx(images_path);
    if (images.shape.size() != 3)
      detail::idx_fail(images_path,
                       detail::concat("expected images of rank 3 (N, rows, cols), got shape ",
                                      detail::shape_str(images.shape)));
    if (images.shape[0] != labels.shape[0])
      throw DataError(detail::concat(images_path, " has ", images.shape[0], " images but ",
                                     labels_path, " has ", labels.shape[0], " labels"));
    rows_ = images.shape[1];
    cols_ = images.shape[2];

    pixels_.resize({images.shape[0], rows_ * cols_});
    std::copy(images.data.begin(), images.data.end(), pixels_.begin());
    labels_.resize({labels.shape[0]});
    std::copy(labels.data.begin(), labels.data.end(), labels_.begin());
  }

  std::string images_path_, labels_path_;
  Index num_classes_ = 10, rows_ = 0, cols_ = 0;
  Tensor<std::uint8_t> pixels_;
  T mean_, std_;
  Tensor<std::int64_t> labels_;
};

}  // namespace backprop::io
