// SPDX-License-Identifier: MIT
// MnistDataset on small IDX files written here (raw, gzip, name variants) and DataLoader.
#include <sys/stat.h>  // mkfifo
#include <zlib.h>

#include <algorithm>
#include <backprop/distributed/sampler.hpp>
#include <backprop/io/mnist.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using backprop::Index;
using backprop::Shape;
using backprop::Tensor;
using backprop::io::Batch;
using backprop::io::DataError;
using backprop::io::DataLoader;
using backprop::io::MnistDataset;
using Catch::Contains;
using Bytes = std::vector<std::uint8_t>;

namespace {

std::string tmp_dir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(BACKPROP_TEST_TMPDIR) / "mnist" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// An IDX file of unsigned bytes: 00 00 08 <rank>, big-endian dims, then data.
Bytes idx(const std::vector<std::uint32_t>& dims, const Bytes& data) {
  Bytes out = {0, 0, 0x08, std::uint8_t(dims.size())};
  for (std::uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::uint8_t(d >> shift));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// Writes bytes to dir/name, gzip-compressed when the name ends in .gz.
std::string write(const std::string& dir, const std::string& name, const Bytes& bytes) {
  const std::string path = dir + "/" + name;
  if (name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
    REQUIRE(gzclose(f) == Z_OK);
  } else {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  return path;
}

// n images of 2x3 pixels, image k's pixel p = (40 k + 9 p) mod 256; labels k mod 10.
Bytes pixel_bytes(std::uint32_t n) {
  Bytes out;
  for (std::uint32_t k = 0; k < n; ++k)
    for (std::uint32_t p = 0; p < 6; ++p) out.push_back(std::uint8_t((40 * k + 9 * p) % 256));
  return out;
}
Bytes label_bytes(std::uint32_t n) {
  Bytes out;
  for (std::uint32_t k = 0; k < n; ++k) out.push_back(std::uint8_t(k % 10));
  return out;
}

// Every sample once per epoch: the batches' rows, in order, are a permutation of 0..n-1.
std::vector<Index> served(DataLoader<float>& loader) {
  std::vector<Index> ids;
  for (Index b = 0; b < loader.num_batches(); ++b) {
    const Batch<float>& batch = loader.batch(b);
    REQUIRE(batch.images.dim() == 2);
    REQUIRE(batch.images.size(0) == batch.size());
    for (Index i = 0; i < batch.size(); ++i) {
      const Index id = batch.labels[i];
      ids.push_back(id);
      // The loader's dataset below has image row k filled with k.
      CHECK(batch.images.at({i, 0}) == float(id));
      CHECK(batch.images.at({i, batch.images.size(1) - 1}) == float(id));
    }
  }
  return ids;
}

// A dataset whose sample k is the row of k's and label k.
struct Numbered {
  explicit Numbered(Index n) : images({n, 3}), labels(Shape{n}) {
    for (Index k = 0; k < n; ++k) {
      images.matrix().row(k).setConstant(float(k));
      labels[k] = k;
    }
  }
  Tensor<float> images;
  Tensor<std::int64_t> labels;
};

std::vector<std::int64_t> labels_of(const Batch<double>& batch) {
  return {batch.labels.begin(), batch.labels.end()};
}

std::vector<Index> iota(Index n) {
  std::vector<Index> v(static_cast<std::size_t>(n));
  for (Index k = 0; k < n; ++k) v[static_cast<std::size_t>(k)] = k;
  return v;
}

}  // namespace

TEST_CASE("MnistDataset: both splits, raw, gzip and dotted names, normalisation", "[mnist]") {
  const std::string dir = tmp_dir("mixed");
  write(dir, "train-images-idx3-ubyte", idx({5, 2, 3}, pixel_bytes(5)));
  write(dir, "train-labels-idx1-ubyte.gz", idx({5}, label_bytes(5)));
  write(dir, "t10k-images.idx3-ubyte.gz", idx({3, 2, 3}, pixel_bytes(3)));
  write(dir, "t10k-labels.idx1-ubyte", idx({3}, label_bytes(3)));

  const MnistDataset<float> train(dir, /*train=*/true);
  CHECK(train.size() == 5);
  CHECK(train.rows() == 2);
  CHECK(train.cols() == 3);
  CHECK(train.num_features() == 6);
  CHECK(train.images().shape() == Shape{5, 6});
  CHECK(train.labels().shape() == Shape{5});
  CHECK(train.images_path() == dir + "/train-images-idx3-ubyte");
  CHECK(train.labels_path() == dir + "/train-labels-idx1-ubyte.gz");
  const Bytes px = pixel_bytes(5);
  for (Index i = 0; i < 30; ++i) {
    // ToTensor() then Normalize((0.5,), (0.5,)), in float32 as torchvision computes it.
    const float expected = (float(px[std::size_t(i)]) / 255.0f - 0.5f) / 0.5f;
    CHECK(train.images()[i] == expected);
  }
  for (Index k = 0; k < 5; ++k) CHECK(train.labels()[k] == k);

  const MnistDataset<double> test(dir + "/", /*train=*/false, 0.1307, 0.3081);
  CHECK(test.size() == 3);
  CHECK(test.images_path() == dir + "/t10k-images.idx3-ubyte.gz");
  CHECK(test.images().at({1, 0}) == Approx((40.0 / 255 - 0.1307) / 0.3081).epsilon(1e-15));
  CHECK(test.labels()[2] == 2);
}

TEST_CASE("MnistDataset: bytes kept as read, normalised by images()", "[mnist]") {
  const std::string dir = tmp_dir("bytes");
  const Bytes px = pixel_bytes(4);
  write(dir, "t10k-images-idx3-ubyte", idx({4, 2, 3}, px));
  write(dir, "t10k-labels-idx1-ubyte", idx({4}, label_bytes(4)));
  const MnistDataset<float> test(dir, false, 0.1307f, 0.3081f);
  CHECK(test.pixels().shape() == Shape{4, 6});
  CHECK(Bytes(test.pixels().begin(), test.pixels().end()) == px);
  CHECK(test.pixel_mean() == 0.1307f);
  CHECK(test.pixel_std() == 0.3081f);
  const Tensor<float> images = test.images();
  CHECK(images.shape() == Shape{4, 6});
  for (Index i = 0; i < 24; ++i)
    CHECK(images[i] == (float(px[std::size_t(i)]) / 255.0f - 0.1307f) / 0.3081f);
}

TEST_CASE("MnistDataset: the ends of the byte range map to -1 and 1", "[mnist]") {
  const std::string dir = tmp_dir("range");
  const std::string images = write(dir, "i", idx({1, 1, 3}, {0, 255, 51}));
  const std::string labels = write(dir, "l", idx({1}, {9}));
  const auto d = MnistDataset<float>::from_files(images, labels);
  CHECK(d.images()[0] == -1.0f);
  CHECK(d.images()[1] == 1.0f);
  CHECK(d.images()[2] == Approx(-0.6f));
}

TEST_CASE("MnistDataset: Fashion-MNIST-style .gz files, larger images", "[mnist]") {
  const std::string dir = tmp_dir("fashion");
  Bytes img(4 * 28 * 28);
  for (std::size_t i = 0; i < img.size(); ++i) img[i] = std::uint8_t(i * 13);
  for (const char* split : {"train", "t10k"}) {
    write(dir, std::string(split) + "-images-idx3-ubyte.gz", idx({4, 28, 28}, img));
    write(dir, std::string(split) + "-labels-idx1-ubyte.gz", idx({4}, {9, 0, 0, 3}));
  }
  const MnistDataset<float> test(dir, false);
  CHECK(test.images().shape() == Shape{4, 784});
  CHECK(test.images().at({3, 783}) == (float(img[3 * 784 + 783]) / 255.0f - 0.5f) / 0.5f);
  CHECK(test.labels()[0] == 9);
}

TEST_CASE("MnistDataset: EMNIST's prefixed names, one dataset per directory", "[mnist]") {
  const std::string dir = tmp_dir("emnist");
  write(dir, "emnist-letters-train-images-idx3-ubyte.gz", idx({5, 2, 3}, pixel_bytes(5)));
  write(dir, "emnist-letters-train-labels-idx1-ubyte", idx({5}, label_bytes(5)));
  write(dir, "emnist-letters-test-images-idx3-ubyte", idx({3, 2, 3}, pixel_bytes(3)));
  write(dir, "emnist-letters-test-images-idx3-ubyte.gz", idx({4, 2, 3}, pixel_bytes(4)));
  write(dir, "emnist-letters-test-labels-idx1-ubyte", idx({3}, label_bytes(3)));
  write(dir, "emnist-letters-mapping.txt", {'1'});
  // Names that only look alike are not taken for the training split's.
  write(dir, "mytrain-images-idx3-ubyte", {1});
  write(dir, "x-train-images-idx3-ubyte.zip", {1});
  const MnistDataset<float> train(dir, true);
  CHECK(train.images_path() == dir + "/emnist-letters-train-images-idx3-ubyte.gz");
  CHECK(train.labels_path() == dir + "/emnist-letters-train-labels-idx1-ubyte");
  CHECK(train.size() == 5);
  const MnistDataset<float> test(dir, false);  // "test" for t10k; raw wins over .gz
  CHECK(test.images_path() == dir + "/emnist-letters-test-images-idx3-ubyte");
  CHECK(test.size() == 3);
  // MNIST's own names win over prefixed ones.
  write(dir, "t10k-images-idx3-ubyte", idx({2, 2, 3}, pixel_bytes(2)));
  CHECK(MnistDataset<float>::find_file(dir, false, "images", "idx3") ==
        dir + "/t10k-images-idx3-ubyte");
  // A second dataset: which one was meant cannot be told.
  write(dir, "emnist-digits-train-images-idx3-ubyte", idx({5, 2, 3}, pixel_bytes(5)));
  CHECK_THROWS_WITH(MnistDataset<float>(dir, true),
                    dir +
                        ": holds several files that could be the training images "
                        "(emnist-digits-train-images-idx3-ubyte, "
                        "emnist-letters-train-images-idx3-ubyte.gz): keep one dataset, in one "
                        "spelling, per directory");
  // "t10k" and "test" name one split: such a pair is one dataset.
  const std::string split = tmp_dir("t10k_and_test");
  write(split, "t10k-images-idx3-ubyte", idx({3, 2, 3}, pixel_bytes(3)));
  write(split, "test-labels-idx1-ubyte", idx({3}, label_bytes(3)));
  CHECK(MnistDataset<float>(split, false).labels_path() == split + "/test-labels-idx1-ubyte");
  // Images and labels of different datasets are not paired, even of equal counts.
  const std::string mixed = tmp_dir("emnist_mixed");
  write(mixed, "train-images-idx3-ubyte", idx({5, 2, 3}, pixel_bytes(5)));
  write(mixed, "emnist-mnist-train-labels-idx1-ubyte.gz", idx({5}, label_bytes(5)));
  CHECK_THROWS_WITH(MnistDataset<float>(mixed, true),
                    mixed + "/train-images-idx3-ubyte: its labels are not beside it: " + mixed +
                        "/emnist-mnist-train-labels-idx1-ubyte.gz is of another dataset; keep "
                        "one dataset per directory");
}

TEST_CASE("MnistDataset: errors name the files and the problem", "[mnist]") {
  const std::string dir = tmp_dir("errors");
  SECTION("missing files") {
    CHECK_THROWS_AS(MnistDataset<float>(dir, true), DataError);
    CHECK_THROWS_WITH(MnistDataset<float>(dir, true),
                      Contains(dir + "/train-images-idx3-ubyte: cannot open: No such file or "
                                     "directory") &&
                          Contains("fetch-mnist.sh"));
    CHECK_THROWS_WITH(MnistDataset<float>::from_files(dir + "/x", dir + "/y"),
                      dir + "/y: cannot open: No such file or directory");
    write(dir, "train-images-idx3-ubyte.gz", idx({5, 2, 3}, pixel_bytes(5)));
    CHECK_THROWS_WITH(MnistDataset<float>(dir, true),
                      Contains(dir + "/train-labels-idx1-ubyte: cannot open: No such file or "
                                     "directory (nor .gz, nor the train-labels.idx1-ubyte "
                                     "spelling, nor a prefixed name as EMNIST's)"));
  }
  SECTION("a root that is not a directory, a FIFO in place of a file") {
    CHECK_THROWS_WITH(MnistDataset<float>(dir + "/nothing", true),
                      dir + "/nothing: no such directory; scripts/fetch-mnist.sh downloads MNIST");
    write(dir, "a-file", {1, 2, 3});
    CHECK_THROWS_WITH(MnistDataset<float>(dir + "/a-file", true), dir + "/a-file: not a directory");
    // Found, then refused unopened: opening a FIFO would wait for a writer, here forever.
    write(dir, "train-labels-idx1-ubyte", idx({3}, {0, 1, 2}));
    REQUIRE(::mkfifo((dir + "/train-images-idx3-ubyte").c_str(), 0600) == 0);
    CHECK_THROWS_WITH(MnistDataset<float>(dir, true),
                      dir +
                          "/train-images-idx3-ubyte: cannot open: a FIFO (named pipe), not a "
                          "regular file");
  }
  SECTION("image and label counts differ") {
    const std::string images =
        write(dir, "train-images-idx3-ubyte", idx({5, 2, 3}, pixel_bytes(5)));
    const std::string labels = write(dir, "train-labels-idx1-ubyte", idx({4}, label_bytes(4)));
    CHECK_THROWS_WITH(MnistDataset<float>(dir, true),
                      images + " has 5 images but " + labels + " has 4 labels");
  }
  SECTION("a label outside [0, num_classes)") {
    write(dir, "train-images-idx3-ubyte", idx({5, 2, 3}, pixel_bytes(5)));
    const std::string labels = write(dir, "train-labels-idx1-ubyte", idx({5}, {1, 2, 3, 10, 4}));
    CHECK_THROWS_WITH(MnistDataset<float>(dir, true),
                      labels + ": label 10 at index 3 is outside [0, 10)");
    CHECK(MnistDataset<float>(dir, true, 0.5f, 0.5f, /*num_classes=*/11).labels()[3] == 10);
  }
  SECTION("ranks") {
    const std::string flat = write(dir, "flat", idx({5, 6}, pixel_bytes(5)));
    const std::string labels = write(dir, "labels", idx({5}, label_bytes(5)));
    CHECK_THROWS_WITH(MnistDataset<float>::from_files(flat, labels),
                      flat + ": expected images of rank 3 (N, rows, cols), got shape [5, 6]");
    CHECK_THROWS_WITH(MnistDataset<float>::from_files(flat, flat),
                      flat + ": expected labels of rank 1 (N), got shape [5, 6]");
  }
  SECTION("a broken file inside the dataset") {
    write(dir, "t10k-images-idx3-ubyte", idx({5, 2, 3}, pixel_bytes(4)));
    write(dir, "t10k-labels-idx1-ubyte", idx({5}, label_bytes(5)));
    CHECK_THROWS_WITH(MnistDataset<float>(dir, false),
                      dir +
                          "/t10k-images-idx3-ubyte: truncated: header says 5 items of 2x3 "
                          "bytes but file holds 4 items");
  }
  SECTION("bad arguments") {
    write(dir, "train-images-idx3-ubyte", idx({5, 2, 3}, pixel_bytes(5)));
    write(dir, "train-labels-idx1-ubyte", idx({5}, label_bytes(5)));
    CHECK_THROWS_AS(MnistDataset<float>(dir, true, 0.5f, 0.0f), std::invalid_argument);
    CHECK_THROWS_AS(MnistDataset<float>(dir, true, 0.5f, 0.5f, 0), std::invalid_argument);
  }
}

TEST_CASE("DataLoader: every sample once per epoch, last partial batch kept", "[dataloader]") {
  const Numbered data(10);
  for (const bool shuffle : {false, true}) {
    DataLoader<float> loader(data.images, data.labels, /*batch_size=*/4, shuffle, /*seed=*/7);
    CHECK(loader.num_batches() == 3);
    CHECK(loader.num_samples() == 10);
    CHECK(loader.batch(0).size() == 4);
    CHECK(loader.batch(2).size() == 2);
    CHECK(loader.batch(2).images.shape() == Shape{2, 3});
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
      loader.set_epoch(epoch);
      std::vector<Index> ids = served(loader);
      CHECK(ids == loader.order());
      std::sort(ids.begin(), ids.end());
      CHECK(ids == iota(10));
    }
  }
}

TEST_CASE("DataLoader: without shuffle the order is the dataset's", "[dataloader]") {
  const Numbered data(7);
  DataLoader<float> loader(data.images, data.labels, 3);
  for (std::uint64_t epoch : {0, 5}) {
    loader.set_epoch(epoch);
    CHECK(served(loader) == iota(7));
  }
}

TEST_CASE("DataLoader: seeded shuffles are reproducible per epoch", "[dataloader]") {
  const Numbered data(50);
  DataLoader<float> a(data.images, data.labels, 8, /*shuffle=*/true, /*seed=*/42);
  std::vector<std::vector<Index>> orders;
  for (std::uint64_t epoch = 0; epoch < 4; ++epoch) {
    a.set_epoch(epoch);
    orders.push_back(served(a));
  }
  for (std::size_t e = 1; e < orders.size(); ++e) CHECK(orders[e] != orders[e - 1]);
  CHECK(orders[0] != iota(50));

  // A resumed run: a new loader with the same seed, straight at epoch 2, serves epoch 2's
  // batches; and going back to an epoch repeats it.
  DataLoader<float> resumed(data.images, data.labels, 8, true, 42);
  resumed.set_epoch(2);
  CHECK(served(resumed) == orders[2]);
  a.set_epoch(1);
  CHECK(served(a) == orders[1]);

  DataLoader<float> other(data.images, data.labels, 8, true, /*seed=*/43);
  CHECK(served(other) != orders[0]);

  // The order is a documented function of (seed, epoch): pinned so it never drifts.
  const Numbered small(10);
  DataLoader<float> pinned(small.images, small.labels, 10, true, 42);
  pinned.set_epoch(3);
  std::vector<Index> expected(10);
  for (std::size_t i = 0; i < 10; ++i) expected[i] = Index(i);
  backprop::Generator gen(DataLoader<float>::shuffle_seed(42, 3));
  for (std::size_t i = 9; i >= 1; --i) std::swap(expected[i], expected[gen.below(i + 1)]);
  CHECK(pinned.order() == expected);
}

TEST_CASE("DataLoader: drop_last, batch larger than the dataset, empty dataset", "[dataloader]") {
  const Numbered data(10);
  DataLoader<float> drop(data.images, data.labels, 4, true, 1, /*drop_last=*/true);
  CHECK(drop.num_batches() == 2);
  CHECK(drop.num_samples() == 8);
  CHECK(drop.batch(1).size() == 4);
  CHECK(served(drop).size() == 8);

  DataLoader<float> big(data.images, data.labels, 64);
  CHECK(big.num_batches() == 1);
  CHECK(big.batch(0).size() == 10);
  CHECK(DataLoader<float>(data.images, data.labels, 64, false, 0, true).num_batches() == 0);
  // Its batch is sized for the samples, not for batch_size rows: 2^40 rows of them would
  // throw std::bad_alloc (as the example's --batch-size 10000000 once did).
  DataLoader<float> huge(data.images, data.labels, Index(1) << 40, true, 1);
  CHECK(huge.num_batches() == 1);
  CHECK(huge.batch(0).size() == 10);
  CHECK(served(huge).size() == 10);

  const Numbered none(0);
  DataLoader<float> empty(none.images, none.labels, 4, true);
  CHECK(empty.num_batches() == 0);

  CHECK_THROWS_AS(big.batch(1), std::invalid_argument);
  CHECK_THROWS_AS(big.batch(-1), std::invalid_argument);
  CHECK_THROWS_AS(DataLoader<float>(data.images, data.labels, 0), std::invalid_argument);
}

TEST_CASE("DataLoader: one reusable batch whose storage survives epochs", "[dataloader]") {
  const Numbered data(10);
  DataLoader<float> loader(data.images, data.labels, 4, true, 3);
  const Batch<float>* first = &loader.batch(0);
  const float* images = first->images.data();
  const std::int64_t* labels = first->labels.data();
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
    loader.set_epoch(epoch);
    for (Index b = 0; b < loader.num_batches(); ++b) {
      const Batch<float>& batch = loader.batch(b);
      CHECK(&batch == first);
      CHECK(batch.images.data() == images);  // shrinking for the last batch kept capacity
      CHECK(batch.labels.data() == labels);
    }
  }
}

TEST_CASE("DataLoader: over an MnistDataset", "[dataloader][mnist]") {
  const std::string dir = tmp_dir("loader");
  write(dir, "train-images-idx3-ubyte.gz", idx({9, 2, 3}, pixel_bytes(9)));
  write(dir, "train-labels-idx1-ubyte.gz", idx({9}, label_bytes(9)));
  const MnistDataset<float> train(dir, true);
  DataLoader<float> loader(train, 4, true, 5);
  loader.set_epoch(1);
  CHECK(loader.num_batches() == 3);
  for (Index b = 0; b < loader.num_batches(); ++b) {
    const Batch<float>& batch = loader.batch(b);
    for (Index i = 0; i < batch.size(); ++i) {
      const Index row = loader.order()[std::size_t(b * 4 + i)];
      CHECK(batch.labels[i] == train.labels()[row]);
      CHECK(batch.images.matrix().row(i) == train.images().matrix().row(row));
    }
  }
}

// The loaders read MnistDataset's bytes and normalise them as they gather; over the same
// images as floats (a TensorDataset of images()) they must serve the very same batches, bit
// for bit.
static_assert(backprop::detail::has_pixels<MnistDataset<double>, double>::value,
              "the loaders must take MnistDataset's byte path");
static_assert(!backprop::detail::has_pixels<backprop::io::TensorDataset<double>, double>::value);
static_assert(!backprop::detail::has_pixels<MnistDataset<float>, double>::value);
TEST_CASE("DataLoader: an MnistDataset's bytes give the batches of its images() as floats",
          "[dataloader][mnist]") {
  const std::string dir = tmp_dir("bytes_vs_floats");
  Bytes px(11 * 4 * 5);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = std::uint8_t(i * 37);
  write(dir, "train-images-idx3-ubyte", idx({11, 4, 5}, px));
  write(dir, "train-labels-idx1-ubyte", idx({11}, label_bytes(11)));
  const MnistDataset<double> train(dir, true, 0.1307, 0.3081);
  const backprop::io::TensorDataset<double> floats(train.images(), train.labels());
  for (const bool drop_last : {false, true}) {
    DataLoader<double> a(train, 4, /*shuffle=*/true, /*seed=*/9, drop_last);
    DataLoader<double> b(floats, 4, true, 9, drop_last);
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
      a.set_epoch(epoch);
      b.set_epoch(epoch);
      REQUIRE(a.num_batches() == (drop_last ? 2 : 3));
      for (Index k = 0; k < a.num_batches(); ++k) {
        const Batch<double>& x = a.batch(k);
        const Batch<double>& y = b.batch(k);
        CHECK(x.images.shape() == y.images.shape());
        CHECK(x.images.matrix() == y.images.matrix());
        CHECK(labels_of(x) == labels_of(y));
      }
    }
  }
  // images() is a new tensor: a loader over it would dangle, so it does not compile.
  static_assert(!std::is_constructible_v<DataLoader<double>, Tensor<double>,
                                         const Tensor<std::int64_t>&, Index>);
  // One rank's shard of each epoch, read as bytes or as floats.
  for (int rank = 0; rank < 2; ++rank) {
    backprop::distributed::DistributedDataLoader<double> a(train, 3, 2, rank, true, 4);
    backprop::distributed::DistributedDataLoader<double> b(floats, 3, 2, rank, true, 4);
    a.set_epoch(2);
    b.set_epoch(2);
    REQUIRE(a.num_batches() == 2);
    for (Index k = 0; k < a.num_batches(); ++k) {
      CHECK(a.batch(k).images.matrix() == b.batch(k).images.matrix());
      CHECK(labels_of(a.batch(k)) == labels_of(b.batch(k)));
    }
  }
}
