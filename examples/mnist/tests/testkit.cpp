// SPDX-License-Identifier: MIT
// Helpers for the example's tests (examples/mnist/tests/run.sh):
//   mnist_testkit subset SRC_DIR DST_DIR N_TRAIN N_TEST   first samples as raw IDX files
//   mnist_testkit same-tensors A.safetensors B.safetensors   every tensor equal, bit for bit
//   mnist_testkit train-f64 INIT.safetensors MNIST_DIR STEPS   reference 1's first STEPS
//       training losses in double, one per line (see train_f64 below)
//   mnist_testkit line-panel Y...   plots.hpp's chart of the points (0, Y0), (1, Y1), ... as an
//                                   SVG on stdout (Y may be nan, inf, 1e308, ...)
#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/idx.hpp>
#include <backprop/io/mnist.hpp>
#include <backprop/io/safetensors.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "../models.hpp"
#include "../plots.hpp"

namespace {

using backprop::Index;

void write_idx(const std::string& path, const backprop::io::IdxArray& a, Index n) {
  std::ofstream out(path, std::ios::binary);
  const unsigned char magic[4] = {0, 0, 8, static_cast<unsigned char>(a.shape.size())};
  out.write(reinterpret_cast<const char*>(magic), 4);
  Index item = 1;
  for (std::size_t d = 0; d < a.shape.size(); ++d) {
    const auto v = static_cast<std::uint32_t>(d == 0 ? n : a.shape[d]);
    const unsigned char be[4] = {static_cast<unsigned char>(v >> 24),
                                 static_cast<unsigned char>(v >> 16),
                                 static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    out.write(reinterpret_cast<const char*>(be), 4);
    if (d > 0) item *= a.shape[d];
  }
  out.write(reinterpret_cast<const char*>(a.data.data()), static_cast<std::streamsize>(n * item));
  if (!out) throw std::runtime_error(path + ": cannot write");
}

int subset(const std::string& src, const std::string& dst, Index n_train, Index n_test) {
  for (const bool train : {true, false}) {
    const Index n = train ? n_train : n_test;
    for (const char* kind : {"images", "labels"}) {
      const std::string in = backprop::io::MnistDataset<float>::find_file(
          src, train, kind, std::strcmp(kind, "images") == 0 ? "idx3" : "idx1");
      const backprop::io::IdxArray a = backprop::io::read_idx(in);
      if (n > a.shape[0])
        throw std::runtime_error(in + ": fewer than " + std::to_string(n) + " items");
      write_idx(dst + "/" + (train ? "train-" : "t10k-") + kind + "-" +
                    (std::strcmp(kind, "images") == 0 ? "idx3" : "idx1") + "-ubyte",
                a, n);
    }
  }
  return 0;
}

int same_tensors(const std::string& a_path, const std::string& b_path) {
  const backprop::io::SafetensorsFile a = backprop::io::read_safetensors(a_path);
  const backprop::io::SafetensorsFile b = backprop::io::read_safetensors(b_path);
  if (a.tensors.size() != b.tensors.size()) {
    std::printf("different: %zu tensors vs %zu\n", a.tensors.size(), b.tensors.size());
    return 1;
  }
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const auto &x = a.tensors[i], &y = b.tensors[i];
    if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape || x.data != y.data) {
      std::printf("different: tensor '%s'\n", x.name.c_str());
      return 1;
    }
  }
  std::printf("identical: %zu tensors\n", a.tensors.size());
  return 0;
}

// Reference 1's Net in double from INIT's (float) weights, trained as
// tests/reference/mnist_torch.py --export-parity trains its float64 copy: SGD lr 0.001
// momentum 0.5, batch 64, the training set in file order. Prints each step's loss with 17
// digits, as the example's losses.csv ("iteration,loss"). The library's layers, loss,
// optimizer and loader are the float run's; only the precision differs, so that the
// trajectory can be compared with PyTorch's tightly on any CPU (in float, a ReLU input
// within rounding of 0 can fall on either side depending on the SIMD width and compiler:
// examples/mnist/tests/run.sh, parity_first_100_losses).
int train_f64(const std::string& init, const std::string& mnist_dir, Index steps) {
  mnist::Net<float> net32;
  backprop::io::load_state_dict(init, net32);
  mnist::Net<double> net;
  const std::vector<backprop::StateEntry<float>> from = net32.state_dict();
  const std::vector<backprop::StateEntry<double>> to = net.state_dict();
  for (std::size_t i = 0; i < from.size(); ++i) {  // same modules, same order
    if (const auto* src = std::get_if<backprop::Tensor<float>*>(&from[i].tensor))
      std::get<backprop::Tensor<double>*>(to[i].tensor)->vector() = (*src)->vector().cast<double>();
    else
      *std::get<backprop::Tensor<std::int64_t>*>(to[i].tensor) =
          *std::get<backprop::Tensor<std::int64_t>*>(from[i].tensor);
  }
  net.set_input_requires_grad(false);
  const backprop::io::MnistDataset<double> train(mnist_dir, /*train=*/true);
  backprop::io::DataLoader<double> loader(train, 64);
  backprop::SGD<double> optimizer(net.parameters(), 0.001, 0.5);
  backprop::CrossEntropyLoss<double> criterion;
  net.train();
  std::printf("iteration,loss\n");
  for (Index b = 0; b < steps && b < loader.num_batches(); ++b) {
    const backprop::io::Batch<double>& batch = loader.batch(b);
    optimizer.zero_grad();
    const double loss = criterion.forward(net.forward(batch.images), batch.labels);
    net.backward(criterion.backward());
    optimizer.step();
    std::printf("%lld,%.17g\n", static_cast<long long>(b), loss);
  }
  return 0;
}

int line_panel(int argc, char** argv) {
  mnist::Series s{"values", "#1f77b4", {}, {}};
  for (int i = 2; i < argc; ++i) {
    s.x.push_back(i - 2);
    s.y.push_back(std::strtod(argv[i], nullptr));
  }
  std::fputs(
      mnist::svg_document(450, 360, mnist::line_panel(0, 0, 450, 360, "test", "x", {s}, true))
          .c_str(),
      stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "subset" && argc == 6)
      return subset(argv[2], argv[3], std::stol(argv[4]), std::stol(argv[5]));
    if (cmd == "same-tensors" && argc == 4) return same_tensors(argv[2], argv[3]);
    if (cmd == "train-f64" && argc == 5) return train_f64(argv[2], argv[3], std::stol(argv[4]));
    if (cmd == "line-panel") return line_panel(argc, argv);
    std::fprintf(stderr,
                 "usage: mnist_testkit subset SRC DST N_TRAIN N_TEST | same-tensors A B | "
                 "train-f64 INIT MNIST_DIR STEPS | line-panel Y...\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_testkit: %s\n", e.what());
    return 1;
  }
}
