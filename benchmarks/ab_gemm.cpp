// SPDX-License-Identifier: MIT
// ab_gemm: Linear's three products at the reference models' shapes, through this tree's
// detail::gemm and through another revision's, alternating in one process. Built and run by
// benchmarks/ab_gemm.sh, which extracts that revision's headers and renames their namespace
// backprop_base, so that both versions compile into this one program.
//
// Why in one process: on a shared host, separate runs of one binary drift by 10% or more from
// process to process (docs/benchmarks.md), which hides the few percent a kernel change makes.
// Here each round times base and ours back to back (the order alternating round by round), and
// the figure is the median over rounds of the round's ratio, so that drift slower than a round
// hits both sides alike. One thread only: each version has its own thread pool, and two pools'
// helpers in one process would compete for the cores.
#include <backprop/detail/gemm.hpp>
#include <base/backprop/detail/gemm.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {

struct Layer {
  const char* model;
  std::int64_t in, out;
};

// Operands as linear.hpp passes them, in either version's Operand type.
template <typename Op>
struct Products {
  std::int64_t n, in, out;
  const float *x, *w, *dy;
  Op xr() const { return {x, in, true}; }
  Op wt() const { return {w, in, false}; }
  Op dyt() const { return {dy, out, false}; }
  Op dyr() const { return {dy, out, true}; }
  Op wr() const { return {w, in, true}; }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> batches = {64, 256};
  int rounds = 31;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc)
      batches = {std::atol(argv[++i])};
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: ab_gemm [--batch N] [--rounds 31]\n");
      return 2;
    }
  }
  if (batches[0] < 1 || rounds < 1) {
    std::fprintf(stderr, "ab_gemm: --batch and --rounds must be >= 1\n");
    return 2;
  }
  // Both pools keep their default of one thread. Timed by this thread's CPU time, which
  // time-sharing does not inflate.
  double (*clock)() = bench::thread_cpu;
  const bench::Peak peak = bench::measure_peak();
  std::printf("CPU: %s; %s; FMA peak %.1f GFLOP/s per core (%s); one thread\n",
              bench::cpu_model().c_str(), bench::compiler().c_str(), peak.per_core,
              bench::fma_isa());
  std::printf(
      "us per call, median over %d rounds; base / ours: median of the rounds' ratios [min, "
      "max], above 1 when ours is faster; bits: whether the two results are identical\n\n",
      rounds);
  std::printf(
      "| batch | layer | product | base | ours | base / ours | bits |\n"
      "|---|---|---|---|---|---|---|\n");
  const std::vector<Layer> layers = {{"bn-mlp", 784, 300},   {"bn-mlp", 300, 100},
                                     {"bn-mlp", 100, 10},    {"deep-mlp", 784, 600},
                                     {"deep-mlp", 600, 400}, {"deep-mlp", 400, 200},
                                     {"deep-mlp", 200, 100}, {"deep-mlp", 100, 10}};
  for (const std::int64_t n : batches)
    for (const Layer& l : layers) {
      const std::int64_t in = l.in, out = l.out;
      // Values that are not round, so that a change in the order of the sums shows in the bits.
      std::vector<float> x(std::size_t(n * in)), w(std::size_t(out * in)), dy(std::size_t(n * out));
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 97) / 97.0f - 0.5f;
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = float(i % 89) / 890.0f - 0.05f;
      for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = float(i % 83) / 83.0f - 0.25f;
      const Products<backprop::detail::Operand<float>> p{n, in, out, x.data(), w.data(), dy.data()};
      const Products<backprop_base::detail::Operand<float>> q{n,        in,       out,
                                                              x.data(), w.data(), dy.data()};
      std::vector<float> c_ours, c_base;
      const auto row = [&](const char* name, std::int64_t size, auto&& ours, auto&& base) {
        c_ours.assign(std::size_t(size), 0.125f);
        c_base.assign(std::size_t(size), 0.125f);
        std::vector<double> to, tb, ratio;
        for (int r = 0; r < rounds; ++r) {
          double a, b;
          if (r % 2) {
            b = bench::mean_call_us(base, 0.01, clock);
            a = bench::mean_call_us(ours, 0.01, clock);
          } else {
            a = bench::mean_call_us(ours, 0.01, clock);
            b = bench::mean_call_us(base, 0.01, clock);
          }
          to.push_back(a);
          tb.push_back(b);
          ratio.push_back(b / a);
        }
        // The same calls once more from the same start, for the bits (dW accumulates).
        c_ours.assign(std::size_t(size), 0.125f);
        c_base.assign(std::size_t(size), 0.125f);
        ours();
        base();
        const bench::Stats s = bench::stats(ratio);
        std::printf("| %lld | %s %lld-%lld | %s | %.1f | %.1f | %.3f [%.3f, %.3f] | %s |\n",
                    static_cast<long long>(n), l.model, static_cast<long long>(in),
                    static_cast<long long>(out), name, bench::stats(tb).median,
                    bench::stats(to).median, s.median, s.min, s.max,
                    c_ours == c_base ? "same" : "differ");
        std::fflush(stdout);
      };
      namespace ours = backprop::detail;
      namespace base = backprop_base::detail;
      row(
          "y = x W^T", n * out,
          [&] { ours::gemm<float>(n, out, in, p.xr(), p.wt(), c_ours.data(), out); },
          [&] { base::gemm<float>(n, out, in, q.xr(), q.wt(), c_base.data(), out); });
      row(
          "dW += dy^T x", out * in,
          [&] { ours::gemm_add<float>(out, in, n, p.dyt(), p.xr(), c_ours.data(), in); },
          [&] { base::gemm_add<float>(out, in, n, q.dyt(), q.xr(), c_base.data(), in); });
      row(
          "dx = dy W", n * in,
          [&] { ours::gemm<float>(n, in, out, p.dyr(), p.wr(), c_ours.data(), in); },
          [&] { base::gemm<float>(n, in, out, q.dyr(), q.wr(), c_base.data(), in); });
    }
  return 0;
}
