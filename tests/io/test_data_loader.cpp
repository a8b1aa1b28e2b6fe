// SPDX-License-Identifier: MIT
// data_loader.hpp: DataLoader over any in-memory dataset (TensorDataset, float targets of
// any shape), the same shuffles whatever the targets, no reallocation between batches.
#include <algorithm>
#include <backprop/io/data_loader.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ios>
#include <limits>
#include <type_traits>
#include <vector>

using backprop::Index;
using backprop::Tensor;
using backprop::io::Batch;
using backprop::io::DataLoader;
using backprop::io::InputSource;
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

// Gathering bytes multiplies by stddev's reciprocal when that gives the bits of dividing by
// it (exact_reciprocal: stddev a power of two whose reciprocal is representable). Every byte
// must come out as normalize_byte's two divisions give it, bit for bit, on both paths: powers
// of two in the middle and at the ends of the exponent range, and other values.
TEMPLATE_TEST_CASE("Batch::gather: bytes normalised as normalize_byte's divisions, bit for bit",
                   "[dataloader]", float, double) {
  using T = TestType;
  using Limits = std::numeric_limits<T>;
  const T largest_power = std::ldexp(T(1), Limits::max_exponent - 1);  // 1 / it is subnormal
  const T tiny_power = std::ldexp(T(1), Limits::min_exponent - 10);    // 1 / it overflows
  // Which stddevs take the multiply: exactly the powers of two with a finite reciprocal.
  CHECK(backprop::io::exact_reciprocal(T(0.5)) == T(2));
  CHECK(backprop::io::exact_reciprocal(T(-0.25)) == T(-4));
  CHECK(backprop::io::exact_reciprocal(largest_power) == T(1) / largest_power);
  CHECK(backprop::io::exact_reciprocal(T(0.3081)) == T(0));
  CHECK(backprop::io::exact_reciprocal(T(3)) == T(0));
  CHECK(backprop::io::exact_reciprocal(tiny_power) == T(0));
  CHECK(backprop::io::exact_reciprocal(Limits::denorm_min()) == T(0));
  CHECK(backprop::io::exact_reciprocal(Limits::infinity()) == T(0));

  Tensor<std::uint8_t> bytes({2, 256});  // every byte, up then down
  for (Index j = 0; j < 256; ++j) {
    bytes.at({0, j}) = static_cast<std::uint8_t>(j);
    bytes.at({1, j}) = static_cast<std::uint8_t>(255 - j);
  }
  const Tensor<std::int64_t> labels = Tensor<std::int64_t>::zeros({2});
  const Index rows[] = {1, 0};
  for (const T mean : {T(0), T(0.5), T(0.1307), T(-3)})
    for (const T sd :
         {T(0.5), T(-0.25), T(1), T(2), T(1) / T(1024), largest_power, Limits::min(), T(0.3081),
          T(3), T(1) / T(255), tiny_power, Limits::denorm_min(), Limits::infinity()}) {
      Batch<T> batch;
      batch.gather(InputSource<T>::of(bytes, mean, sd), labels, rows, {2, 256}, {2});
      for (Index i = 0; i < 2; ++i)
        for (Index j = 0; j < 256; ++j) {
          const T got = batch.images.at({i, j});
          const T want = backprop::io::normalize_byte(bytes.at({rows[i], j}), mean, sd);
          if (std::memcmp(&got, &want, sizeof(T)) != 0)
            FAIL("mean " << mean << ", std " << sd << ", byte " << int(bytes.at({rows[i], j}))
                         << std::hexfloat << ": gathered " << got << ", normalize_byte " << want);
        }
    }
}
