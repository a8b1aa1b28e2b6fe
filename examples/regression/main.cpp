// SPDX-License-Identifier: MIT
// Regression example: an MLP fits y = sin(x) + noise with MSELoss, Adam and CosineAnnealingLR,
// batches from io::DataLoader over a TensorDataset. README.md has the PyTorch program.
#include <backprop/backprop.hpp>
#include <backprop/io/atomic_file.hpp>
#include <backprop/io/data_loader.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "../mnist/plots.hpp"  // line_panel, svg_document: the loss curves

using namespace backprop;
using io::TensorDataset;

namespace {

constexpr float kNoiseStd = 0.1f;  // y = sin(x) + N(0, 0.1^2): the best possible MSE is 0.01
constexpr float kXMax = 3.0f;      // x ~ U(-3, 3)

struct Options {
  Index epochs = 300;
  double lr = 1e-2;
  std::uint64_t seed = 0;
  std::string out = "runs/regression";
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "regression: %s (try --help)\n", message.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help") {
      std::printf(
          "usage: regression [--epochs N] [--lr X] [--seed S] [--out DIR]\n"
          "Fits y = sin(x) + noise with a 1-64-64-1 Tanh MLP; writes DIR/{fit,loss}.svg.\n"
          "  --epochs N  epochs of 200 samples in batches of 32 (default 300)\n"
          "  --lr X      Adam's initial lr, cosine-annealed to 0 (default 0.01)\n"
          "  --seed S    seeds the data, the initial weights and the shuffle (default 0)\n"
          "  --out DIR   where the pictures go (default runs/regression)\n");
      std::exit(0);
    }
    if (flag != "--epochs" && flag != "--lr" && flag != "--seed" && flag != "--out")
      usage_error("unknown flag '" + flag + "'");
    if (i + 1 >= argc) usage_error(flag + " needs a value");
    const std::string value = argv[++i];
    char* end = nullptr;
    if (flag == "--epochs") {
      const long long e = std::strtoll(value.c_str(), &end, 10);
      if (*end != '\0' || value.empty() || e < 1 || e > 1000000)
        usage_error("--epochs expects an integer in [1, 1000000], got '" + value + "'");
      opt.epochs = static_cast<Index>(e);
    } else if (flag == "--lr") {
      opt.lr = std::strtod(value.c_str(), &end);
      if (*end != '\0' || value.empty() || !(opt.lr > 0 && opt.lr < 10))
        usage_error("--lr expects a number in (0, 10), got '" + value + "'");
    } else if (flag == "--seed") {
      opt.seed = std::strtoull(value.c_str(), &end, 10);
      if (*end != '\0' || value.empty() || value[0] == '-')
        usage_error("--seed expects a non-negative integer, got '" + value + "'");
    } else {
      if (value.empty()) usage_error("--out expects a directory, got ''");
      opt.out = value;
    }
  }
  return opt;
}

// n points x ~ U(-3, 3), y = sin(x) + noise, as tensors (n, 1): TensorDataset's inputs and targets.
TensorDataset<float, float> make_data(Index n, Generator& gen) {
  Tensor<float> x = Tensor<float>::zeros({n, 1}), y = Tensor<float>::zeros({n, 1});
  for (Index i = 0; i < n; ++i) {
    x[i] = gen.uniform(-kXMax, kXMax);
    y[i] = std::sin(x[i]) + gen.normal(0.0f, kNoiseStd);
  }
  return TensorDataset<float, float>(std::move(x), std::move(y));
}

// The mean squared error over a whole dataset, one batch (model.eval(); with torch.no_grad()).
float evaluate(Sequential<float>& model, MSELoss<float>& criterion,
               const TensorDataset<float, float>& data) {
  model.eval();
  NoGradGuard no_grad;
  return criterion.forward(model.forward(data.inputs()), data.targets());
}

// The data points, sin(x) and the model's prediction on a grid, in one SVG.
std::string fit_svg(Sequential<float>& model, const TensorDataset<float, float>& train) {
  const double w = 720, h = 420, left = 50, top = 40, pw = w - 70, ph = h - 80;
  const double y_max = 1.6;
  const auto px = [&](double x) { return left + (x + kXMax) / (2 * kXMax) * pw; };
  const auto py = [&](double y) { return top + (y_max - y) / (2 * y_max) * ph; };
  std::ostringstream o;
  o << mnist::svg::text(w / 2, 22, "y = sin(x) + noise: data (gray), sin(x) (green), model (blue)",
                        14, "middle", "font-weight=\"bold\"");
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"white\" stroke=\"#888\"/>\n";
  for (int t = -3; t <= 3; ++t) o << mnist::svg::text(px(t), top + ph + 16, std::to_string(t), 11);
  for (int t = -1; t <= 1; ++t)
    o << mnist::svg::text(left - 6, py(t) + 4, std::to_string(t), 11, "end");
  for (Index i = 0; i < train.size(); ++i)
    o << "<circle cx=\"" << px(train.inputs()[i]) << "\" cy=\"" << py(train.targets()[i])
      << "\" r=\"2.5\" fill=\"#999\"/>\n";
  const Index grid = 121;
  Tensor<float> xs = Tensor<float>::zeros({grid, 1});
  for (Index i = 0; i < grid; ++i)
    xs[i] = -kXMax + 2 * kXMax * static_cast<float>(i) / static_cast<float>(grid - 1);
  model.eval();
  const Tensor<float>& pred = model.forward(xs);
  const auto polyline = [&](const char* color, auto f) {
    o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"";
    for (Index i = 0; i < grid; ++i) o << px(xs[i]) << ',' << py(f(i)) << ' ';
    o << "\"/>\n";
  };
  polyline("#1a7f37", [&](Index i) { return std::sin(xs[i]); });
  polyline("#0969da", [&](Index i) { return pred[i]; });
  return mnist::svg_document(w, h, o.str());
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  Generator gen(opt.seed);
  const TensorDataset<float, float> train = make_data(200, gen), test = make_data(200, gen);
  io::DataLoader<float, float> loader(train, /*batch_size=*/32, /*shuffle=*/true, opt.seed);

  // nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
  Sequential<float> model{Linear<float>(1, 64, true, gen), Tanh<float>(),
                          Linear<float>(64, 64, true, gen), Tanh<float>(),
                          Linear<float>(64, 1, true, gen)};
  MSELoss<float> criterion;                                         // nn.MSELoss()
  Adam<float> optimizer(model.parameters(), opt.lr);                // optim.Adam(..., lr)
  CosineAnnealingLR<Adam<float>> scheduler(optimizer, opt.epochs);  // CosineAnnealingLR(opt, T_max)

  mnist::Series train_curve{"train", "#0969da", {}, {}}, test_curve{"test", "#cf222e", {}, {}};
  float test_mse = 0;
  for (Index epoch = 0; epoch < opt.epochs; ++epoch) {
    model.train();
    loader.set_epoch(static_cast<std::uint64_t>(epoch));
    for (Index b = 0; b < loader.num_batches(); ++b) {  // for x, y in loader:
      const io::Batch<float, float>& batch = loader.batch(b);
      optimizer.zero_grad();                                      // optimizer.zero_grad()
      const Tensor<float>& output = model.forward(batch.images);  // output = model(x)
      criterion.forward(output, batch.labels);                    // loss = criterion(output, y)
      model.backward(criterion.backward());                       // loss.backward()
      optimizer.step();                                           // optimizer.step()
    }
    scheduler.step();  // scheduler.step()
    const float train_mse = evaluate(model, criterion, train);
    test_mse = evaluate(model, criterion, test);
    train_curve.x.push_back(static_cast<double>(epoch + 1));
    train_curve.y.push_back(std::log10(train_mse));
    test_curve.x.push_back(static_cast<double>(epoch + 1));
    test_curve.y.push_back(std::log10(test_mse));
    if ((epoch + 1) % 25 == 0 || epoch + 1 == opt.epochs)
      std::printf("epoch %4lld  train MSE %.5f  test MSE %.5f\n", static_cast<long long>(epoch + 1),
                  static_cast<double>(train_mse), static_cast<double>(test_mse));
  }
  std::printf("final test MSE %.5f (noise variance %.5f)\n", static_cast<double>(test_mse),
              static_cast<double>(kNoiseStd * kNoiseStd));

  try {
    std::filesystem::create_directories(opt.out);
    io::write_file_atomic(opt.out + "/fit.svg", fit_svg(model, train));
    io::write_file_atomic(
        opt.out + "/loss.svg",
        mnist::svg_document(720, 360,
                            mnist::line_panel(0, 0, 720, 360, "MSE (log10) per epoch", "epoch",
                                              {train_curve, test_curve}, true)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "regression: %s\n", e.what());
    return 1;
  }
  std::printf("wrote %s/fit.svg and %s/loss.svg\n", opt.out.c_str(), opt.out.c_str());
}
