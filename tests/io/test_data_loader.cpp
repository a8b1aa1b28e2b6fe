// SPDX-License-Identifier: MIT
// data_loader.hpp: DataLoader over any in-memory dataset (TensorDataset, float targets of
// any shape), the same shuffles whatever the targets, no reallocation between batches.
#include <algorithm>
#include <backprop/io/data_loader.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <type_traits>
#include <vector>

using backprop::Index;
using backprop::Tensor;
using backprop::io::Batch;
using backprop::io::DataLoader;
using backprop::io::TensorDataset;

namespace {

// Sample i's inputs are 100 i + j (4 values), its targets 1000 i + k (2 x 3 values), so a
// batch row says which sample it is and whether inputs and targets stayed together.
TensorDataset<float, double> numbered(Index n) {
  Tensor<float> x({n, 4});
  Tensor<double> y({n, 2, 3});
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j < 4; ++j) x.at({i, j}) = static_cast<float>(100 * i + j);
    for (Index k = 0; k < 6; ++k) y.at({i, k / 3, k % 3}) = static_cast<double>(1000 * i + k);
  }
  return TensorDataset<float, double>(std::move(x), std::move(y));
}

}  // namespace

TEST_CASE("DataLoader: float targets of any shape, every sample once per epoch", "[dataloader]") {
  const TensorDataset<float, double> data = numbered(11);
  DataLoader<float, double> loader(data, /*batch_size=*/4, /*shuffle=*/true, /*seed=*/9);
  REQUIRE(loader.num_batches() == 3);
  for (std::uint64_t epoch : {0u, 1u, 5u}) {
    loader.set_epoch(epoch);
    std::vector<Index> seen;
    for (Index b = 0; b < loader.num_batches(); ++b) {
      const Batch<float, double>& batch = loader.batch(b);
      const Index size = b < 2 ? 4 : 3;  // the last batch keeps the 3 left
      REQUIRE(batch.size() == size);
      CHECK(batch.images.shape() == backprop::Shape{size, 4});
      CHECK(batch.labels.shape() == backprop::Shape{size, 2, 3});
      for (Index r = 0; r < size; ++r) {
        const Index i = static_cast<Index>(batch.images.at({r, 0})) / 100;
        seen.push_back(i);
        CHECK(batch.images.at({r, 3}) == static_cast<float>(100 * i + 3));
        for (Index k = 0; k < 6; ++k)
          CHECK(batch.labels.at({r, k / 3, k % 3}) == static_cast<double>(1000 * i + k));
      }
    }
    CHECK(seen == loader.order());
    std::vector<Index> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    for (Index i = 0; i < 11; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);
  }
}

TEST_CASE("DataLoader: the shuffle depends on (seed, epoch) only, not on the targets",
          "[dataloader]") {
  const TensorDataset<float, double> data = numbered(20);
  const Tensor<std::int64_t> labels({20});
  DataLoader<float, double> a(data, 5, true, 42);
  DataLoader<float> b(data.inputs(), labels, 7, true, 42);
  for (std::uint64_t epoch = 0; epoch < 4; ++epoch) {
    a.set_epoch(epoch);
    b.set_epoch(epoch);
    CHECK(a.order() == b.order());
    CHECK(a.indices() == a.order());
  }
}

TEST_CASE("DataLoader: batches refill the same buffers", "[dataloader]") {
  const TensorDataset<float, double> data = numbered(10);
  DataLoader<float, double> loader(data, 4, true, 1, /*drop_last=*/false);
  const float* x = loader.batch(0).images.data();
  const double* y = loader.batch(0).labels.data();
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
    loader.set_epoch(epoch);
    for (Index b = 0; b < loader.num_batches(); ++b) {
      CHECK(loader.batch(b).images.data() == x);  // the last, smaller batch too
      CHECK(loader.batch(b).labels.data() == y);
    }
  }
}

TEST_CASE("DataLoader: drop_last and mismatched datasets", "[dataloader]") {
  const TensorDataset<float, double> data = numbered(10);
  DataLoader<float, double> loader(data, 4, false, 0, /*drop_last=*/true);
  CHECK(loader.num_batches() == 2);
  CHECK(loader.num_samples() == 8);
  CHECK_THROWS_WITH(
      (TensorDataset<float, double>(Tensor<float>({3, 2}), Tensor<double>({4}))),
      Catch::Contains("expected inputs (N, ...) and targets (N, ...), got [3, 2] and [4]"));
  const Tensor<float> three({3, 2});
  const Tensor<std::int64_t> four({4});
  CHECK_THROWS_WITH((DataLoader<float>(three, four, 2)),
                    Catch::Contains("DataLoader: expected inputs (N, ...)"));
  // The loader points at the tensors: it refuses temporaries, which would dangle.
  static_assert(!std::is_constructible_v<DataLoader<float>, Tensor<float>,
                                         const Tensor<std::int64_t>&, Index>);
  static_assert(!std::is_constructible_v<DataLoader<float>, const Tensor<float>&,
                                         Tensor<std::int64_t>, Index>);
  static_assert(std::is_constructible_v<DataLoader<float>, const Tensor<float>&,
                                        const Tensor<std::int64_t>&, Index>);
}
