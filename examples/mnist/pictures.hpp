// SPDX-License-Identifier: MIT
// The MNIST example's pictures (plots.hpp draws them): reference 1's sample digits and
// loss/accuracy curves, reference 2's loss every 30 iterations, a confusion matrix; and on a
// terminal the digits as text, as many side by side as the terminal is wide.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/io/mnist.hpp>
#include <backprop/io/safetensors.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "history.hpp"
#include "plots.hpp"
#include "progress.hpp"

namespace mnist {

/// Writes the four SVG files into `out` and returns their paths.
inline std::vector<std::string> write_pictures(
    const std::string& out, const std::string& preset, backprop::Module<float>& model,
    const backprop::io::MnistDataset<float>& test, const History& h,
    const std::vector<std::vector<std::int64_t>>& confusion) {
  using backprop::Index;
  using backprop::Tensor;
  std::vector<std::string> files;
  const auto write = [&](const std::string& name, const std::string& svg) {
    backprop::io::write_file_atomic(out + "/" + name, svg);
    files.push_back(out + "/" + name);
  };

  // 1. The first six test digits with their labels and the model's predictions.
  const Index n = std::min<Index>(6, test.size()), f = test.num_features();
  const std::uint8_t* bytes = test.pixels().data();
  Tensor<float> first({n, f});
  for (Index i = 0; i < n * f; ++i)
    first[i] = backprop::io::normalize_byte(bytes[i], test.pixel_mean(), test.pixel_std());
  model.eval();
  backprop::NoGradGuard no_grad;
  const Tensor<float>& pred_out = model.forward(first);
  std::vector<std::vector<std::uint8_t>> pixels;
  std::vector<int> labels, predictions;
  for (Index i = 0; i < n; ++i) {
    pixels.emplace_back(bytes + i * f, bytes + (i + 1) * f);
    labels.push_back(static_cast<int>(test.labels()[i]));
    Index pred = 0;
    pred_out.matrix().row(i).maxCoeff(&pred);
    predictions.push_back(static_cast<int>(pred));
  }
  write("digits.svg", digits_svg(pixels, static_cast<int>(test.rows()),
                                 static_cast<int>(test.cols()), labels, predictions));

  // 2. Train/test loss and accuracy per finished epoch.
  Series train_loss{"train loss", "#1f77b4", {}, {}}, test_loss{"test loss", "#ff7f0e", {}, {}};
  Series train_acc{"train acc", "#1f77b4", {}, {}}, test_acc{"test acc", "#ff7f0e", {}, {}};
  for (const EpochMetrics& m : h.epochs) {
    const double e = static_cast<double>(m.epoch);
    train_loss.x.push_back(e), train_loss.y.push_back(m.train_loss);
    test_loss.x.push_back(e), test_loss.y.push_back(m.test_loss);
    train_acc.x.push_back(e), train_acc.y.push_back(m.train_acc);
    test_acc.x.push_back(e), test_acc.y.push_back(m.test_acc);
  }
  write("curves.svg", svg_document(900, 360,
                                   line_panel(0, 0, 450, 360, "loss (" + preset + ")", "epoch",
                                              {train_loss, test_loss}, true) +
                                       line_panel(450, 0, 450, 360, "accuracy", "epoch",
                                                  {train_acc, test_acc}, true)));

  // 3. The loss every 30 iterations, as reference 2's losses1.
  Series every30{"loss", "#d62728", {}, {}};
  for (std::size_t i = 0; i < h.losses.size(); i += 30)
    every30.x.push_back(static_cast<double>(i)), every30.y.push_back(h.losses[i]);
  write("loss_every_30.svg",
        svg_document(700, 360,
                     line_panel(0, 0, 700, 360, "training loss every 30 iterations", "iteration",
                                {every30})));

  // 4. Confusion matrix on the test set.
  write("confusion.svg", confusion_svg(confusion, "confusion matrix (test set)"));

  // On a terminal, the digits as text too: as many as fit side by side, two rows per line.
  if (::isatty(STDERR_FILENO) == 1) {
    const char* shades = " .:-=+*#%@";
    const Index cell = test.cols() + 2;
    const Index shown = std::min<Index>(n, std::max<Index>(1, (terminal_columns() - 1) / cell));
    if (cell <= terminal_columns() - 1) {
      for (Index r = 0; r < test.rows(); r += 2) {
        std::string line;
        for (Index i = 0; i < shown; ++i) {
          for (Index c = 0; c < test.cols(); ++c)
            line += shades[pixels[static_cast<std::size_t>(i)]
                                 [static_cast<std::size_t>(r * test.cols() + c)] *
                           9 / 255];
          if (i + 1 < shown) line += "  ";
        }
        std::fprintf(stderr, "%s\n", line.c_str());
      }
      std::string caption;
      for (Index i = 0; i < shown; ++i) {
        std::string t = "label " + std::to_string(labels[static_cast<std::size_t>(i)]) + " pred " +
                        std::to_string(predictions[static_cast<std::size_t>(i)]);
        if (i + 1 < shown) t.resize(static_cast<std::size_t>(cell), ' ');
        caption += t;
      }
      std::fprintf(stderr, "%s\n", caption.c_str());
    }
  }
  return files;
}

}  // namespace mnist
