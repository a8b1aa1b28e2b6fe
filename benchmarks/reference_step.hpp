// SPDX-License-Identifier: MIT
// The un-optimised reference the benchmark validates against before it times anything:
// one training step of a chain of Linear / BatchNorm1d (training mode) / ReLU layers with a
// mean cross-entropy loss, in double, with plain loops and no Eigen. It shares no code with
// the library, so a fast path that is wrong cannot agree with it by construction.
#pragma once

#include <algorithm>
#include <backprop/backprop.hpp>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

using backprop::Index;

// One layer of the chain with its parameters copied to double, and what backward needs.
struct RefLayer {
  enum Kind { kLinear, kBatchNorm, kReLU } kind;
  Index in = 0, out = 0;     // features in and out (equal for BN and ReLU)
  std::vector<double> w, b;  // Linear: W (out, in), b (out); BN: gamma, beta (C)
  double eps = 0;
  std::vector<double> x, x_hat, inv_std;  // saved input; BN's x_hat (N, C) and inv_std (C)
  std::vector<double> grad_w, grad_b;     // results of backward
};

// Copies the parameters of the library's chain of leaf modules into double layers.
inline std::vector<RefLayer> reference_layers(const std::vector<backprop::Module<float>*>& chain) {
  std::vector<RefLayer> layers;
  for (backprop::Module<float>* m : chain) {
    RefLayer r{};
    if (auto* lin = dynamic_cast<backprop::Linear<float>*>(m)) {
      r.kind = RefLayer::kLinear;
      r.in = lin->in_features();
      r.out = lin->out_features();
      r.w.assign(lin->weight.begin(), lin->weight.end());
      r.b.assign(lin->bias.begin(), lin->bias.end());
    } else if (auto* bn = dynamic_cast<backprop::BatchNorm1d<float>*>(m)) {
      r.kind = RefLayer::kBatchNorm;
      r.in = r.out = bn->num_features();
      r.w.assign(bn->weight.begin(), bn->weight.end());
      r.b.assign(bn->bias.begin(), bn->bias.end());
      r.eps = bn->eps();
    } else if (dynamic_cast<backprop::ReLU<float>*>(m)) {
      r.kind = RefLayer::kReLU;
    } else {
      throw std::logic_error("reference_layers: unsupported module in the chain");
    }
    layers.push_back(std::move(r));
  }
  return layers;
}

struct RefStep {
  double loss = 0;
  std::vector<double> logits;  // (N, classes)
};

// Forward, mean cross-entropy, backward: fills each layer's grad_w / grad_b.
inline RefStep reference_step(std::vector<RefLayer>& layers, const float* images, Index n,
                              Index features, const std::int64_t* labels) {
  std::vector<double> x(images, images + n * features), y;
  Index width = features;
  for (RefLayer& l : layers) {
    l.x = x;
    if (l.kind == RefLayer::kLinear) {
      y.assign(static_cast<std::size_t>(n * l.out), 0.0);
      for (Index i = 0; i < n; ++i)
        for (Index o = 0; o < l.out; ++o) {
          double s = l.b[static_cast<std::size_t>(o)];
          for (Index k = 0; k < l.in; ++k)
            s += x[static_cast<std::size_t>(i * l.in + k)] *
                 l.w[static_cast<std::size_t>(o * l.in + k)];
          y[static_cast<std::size_t>(i * l.out + o)] = s;
        }
      width = l.out;
    } else if (l.kind == RefLayer::kBatchNorm) {
      const Index c = l.in;
      y.assign(x.size(), 0.0);
      l.x_hat.assign(x.size(), 0.0);
      l.inv_std.assign(static_cast<std::size_t>(c), 0.0);
      for (Index j = 0; j < c; ++j) {
        double mean = 0, var = 0;
        for (Index i = 0; i < n; ++i) mean += x[static_cast<std::size_t>(i * c + j)];
        mean /= static_cast<double>(n);
        for (Index i = 0; i < n; ++i) {
          const double d = x[static_cast<std::size_t>(i * c + j)] - mean;
          var += d * d;
        }
        var /= static_cast<double>(n);  // biased, as in training-mode normalisation
        const double inv_std = 1.0 / std::sqrt(var + l.eps);
        l.inv_std[static_cast<std::size_t>(j)] = inv_std;
        for (Index i = 0; i < n; ++i) {
          const std::size_t at = static_cast<std::size_t>(i * c + j);
          l.x_hat[at] = (x[at] - mean) * inv_std;
          y[at] = l.w[static_cast<std::size_t>(j)] * l.x_hat[at] + l.b[static_cast<std::size_t>(j)];
        }
      }
    } else {
      y = x;
      for (double& v : y) v = v > 0 ? v : 0.0;
    }
    x.swap(y);
  }

  // Mean cross-entropy and its gradient d(loss)/d(logits) = (softmax - onehot) / n.
  RefStep result;
  result.logits = x;
  const Index classes = width;
  std::vector<double> dy(x.size());
  for (Index i = 0; i < n; ++i) {
    const double* row = &x[static_cast<std::size_t>(i * classes)];
    const double m = *std::max_element(row, row + classes);
    double sum = 0;
    for (Index j = 0; j < classes; ++j) sum += std::exp(row[j] - m);
    const Index t = static_cast<Index>(labels[i]);
    result.loss += m + std::log(sum) - row[t];
    for (Index j = 0; j < classes; ++j)
      dy[static_cast<std::size_t>(i * classes + j)] =
          (std::exp(row[j] - m) / sum - (j == t ? 1.0 : 0.0)) / static_cast<double>(n);
  }
  result.loss /= static_cast<double>(n);

  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    RefLayer& l = *it;
    std::vector<double> dx(l.x.size(), 0.0);
    if (l.kind == RefLayer::kLinear) {
      l.grad_w.assign(l.w.size(), 0.0);
      l.grad_b.assign(l.b.size(), 0.0);
      for (Index i = 0; i < n; ++i)
        for (Index o = 0; o < l.out; ++o) {
          const double g = dy[static_cast<std::size_t>(i * l.out + o)];
          l.grad_b[static_cast<std::size_t>(o)] += g;
          for (Index k = 0; k < l.in; ++k) {
            l.grad_w[static_cast<std::size_t>(o * l.in + k)] +=
                g * l.x[static_cast<std::size_t>(i * l.in + k)];
            dx[static_cast<std::size_t>(i * l.in + k)] +=
                g * l.w[static_cast<std::size_t>(o * l.in + k)];
          }
        }
    } else if (l.kind == RefLayer::kBatchNorm) {
      const Index c = l.in;
      l.grad_w.assign(static_cast<std::size_t>(c), 0.0);
      l.grad_b.assign(static_cast<std::size_t>(c), 0.0);
      for (Index j = 0; j < c; ++j) {
        // dx_hat = dy * gamma
        // dx = inv_std / n * (n dx_hat - sum dx_hat - x_hat sum(dx_hat x_hat))
        double sum_dxh = 0, sum_dxh_xh = 0;
        for (Index i = 0; i < n; ++i) {
          const std::size_t at = static_cast<std::size_t>(i * c + j);
          l.grad_b[static_cast<std::size_t>(j)] += dy[at];
          l.grad_w[static_cast<std::size_t>(j)] += dy[at] * l.x_hat[at];
          const double dxh = dy[at] * l.w[static_cast<std::size_t>(j)];
          sum_dxh += dxh;
          sum_dxh_xh += dxh * l.x_hat[at];
        }
        const double k = l.inv_std[static_cast<std::size_t>(j)] / static_cast<double>(n);
        for (Index i = 0; i < n; ++i) {
          const std::size_t at = static_cast<std::size_t>(i * c + j);
          const double dxh = dy[at] * l.w[static_cast<std::size_t>(j)];
          dx[at] = k * (static_cast<double>(n) * dxh - sum_dxh - l.x_hat[at] * sum_dxh_xh);
        }
      }
    } else {
      for (std::size_t i = 0; i < dx.size(); ++i) dx[i] = l.x[i] > 0 ? dy[i] : 0.0;
    }
    dy.swap(dx);
  }
  return result;
}

// max |a - r| / max(max |r|, floor): the error relative to the tensor's scale. The floor
// matters for tensors that are zero in exact arithmetic, such as the bias gradient of a
// Linear followed by BatchNorm (the batch mean removes the bias): they are compared at the
// scale of the other gradients.
inline double scaled_error(const float* a, const std::vector<double>& r, double floor = 1e-30) {
  double err = 0, scale = floor;
  for (std::size_t i = 0; i < r.size(); ++i) {
    err = std::max(err, std::abs(static_cast<double>(a[i]) - r[i]));
    scale = std::max(scale, std::abs(r[i]));
  }
  return err / scale;
}

}  // namespace bench
