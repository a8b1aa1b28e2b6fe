// SPDX-License-Identifier: MIT
// Helpers for the reliability tests (kill_test.sh, write_errors.sh):
//   backprop_reliability_kit synthetic DIR N SEED
//       a random MNIST-format dataset: N 28x28 images, labels i % 10, train and t10k splits
//   backprop_reliability_kit check-checkpoint PRESET PATH
//       loads PATH as a full checkpoint of the MNIST example's PRESET (bn-mlp or deep-mlp,
//       784 inputs, 10 classes) exactly as --resume does; prints its epoch and exits 0, or
//       prints the error and exits 1
#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../examples/mnist/models.hpp"

namespace {

namespace io = backprop::io;

void write_idx(const std::string& path, const std::vector<std::uint32_t>& dims,
               const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out = {0, 0, 8, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<std::uint8_t>(d >> shift));
  out.insert(out.end(), data.begin(), data.end());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
  if (!f) throw std::runtime_error(path + ": cannot write");
}

int synthetic(const std::string& dir, std::uint32_t n, std::uint64_t seed) {
  std::filesystem::create_directories(dir);
  backprop::Generator gen(seed);
  for (const char* split : {"train", "t10k"}) {
    std::vector<std::uint8_t> pixels(std::size_t{n} * 784), labels(n);
    for (std::uint8_t& p : pixels) p = static_cast<std::uint8_t>(gen.below(256));
    for (std::uint32_t i = 0; i < n; ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
    write_idx(dir + "/" + split + "-images-idx3-ubyte", {n, 28, 28}, pixels);
    write_idx(dir + "/" + split + "-labels-idx1-ubyte", {n}, labels);
  }
  return 0;
}

// The checks --resume makes (load_checkpoint: every tensor, the optimizer, the generator),
// plus the example's own metadata: the preset, and one history row per finished epoch.
int check_checkpoint(const std::string& preset, const std::string& path) {
  backprop::manual_seed(0);
  std::unique_ptr<backprop::Module<float>> model;
  double momentum = 0;
  if (preset == "bn-mlp") {
    model = std::make_unique<mnist::Net<float>>(784, 300, 100, 10);
    momentum = 0.5;
  } else if (preset == "deep-mlp") {
    model = std::make_unique<backprop::Sequential<float>>(mnist::deep_mlp<float>(784, 10));
  } else {
    throw std::runtime_error("unknown preset '" + preset + "'");
  }
  backprop::SGD<float> optimizer(model->parameters(), 0.01, momentum);
  backprop::Generator gen;
  const io::CheckpointState s = io::load_checkpoint(path, *model, optimizer, gen);
  const auto meta = [&](const char* key) {
    const auto it = s.metadata.find(key);
    if (it == s.metadata.end()) throw std::runtime_error(path + ": no metadata '" + key + "'");
    return it->second;
  };
  if (meta("preset") != preset)
    throw std::runtime_error(path + ": preset '" + meta("preset") + "', expected " + preset);
  std::int64_t rows = 0;
  for (char c : meta("history.epochs")) rows += c == ';';
  if (rows != s.epoch)
    throw std::runtime_error(path + ": epoch " + std::to_string(s.epoch) + " but " +
                             std::to_string(rows) + " rows of history");
  std::printf("%lld\n", static_cast<long long>(s.epoch));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 4 && args[0] == "synthetic")
      return synthetic(args[1], static_cast<std::uint32_t>(std::stoul(args[2])),
                       std::stoull(args[3]));
    if (args.size() == 3 && args[0] == "check-checkpoint")
      return check_checkpoint(args[1], args[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "backprop_reliability_kit: %s\n", e.what());
    return 1;
  }
  std::fprintf(
      stderr,
      "usage: backprop_reliability_kit synthetic DIR N SEED | check-checkpoint PRESET PATH\n");
  return 2;
}
