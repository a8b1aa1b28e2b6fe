// SPDX-License-Identifier: MIT
// bench_gemm: Linear's three products at the reference models' shapes, through detail::gemm
// (gemm_kernel.hpp's kernel for depths 16 < k <= 2048 in AVX2/AVX-512 builds, else Eigen's) and
// through Eigen's kernel alone (detail::gemm_eigen), in the same process, alternating, one
// thread.
//   cmake --build build-bench --target bench_gemm
//   build-bench/benchmarks/bench_gemm [--batch 64] [--rounds 7]
// Each figure is the median over rounds of the mean time of as many calls as fill 20 ms of
// thread CPU time, and its share of the FMA peak that bench_util.hpp measures on this CPU.
#include <backprop/detail/gemm.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_util.hpp"

using backprop::detail::Operand;
namespace detail = backprop::detail;

namespace {

struct Layer {
  const char* model;
  std::int64_t in, out;
};

// Median of `rounds` rounds of the mean CPU time of one call, in microseconds; a and b (the
// two kernels) alternate round by round, so that load from elsewhere hits both alike.
template <typename A, typename B>
std::pair<double, double> time_pair(int rounds, A&& a, B&& b) {
  std::vector<double> ta, tb;
  for (int r = 0; r < rounds; ++r) {
    ta.push_back(bench::mean_call_us(a, 0.02, bench::thread_cpu));
    tb.push_back(bench::mean_call_us(b, 0.02, bench::thread_cpu));
  }
  return {bench::stats(ta).median, bench::stats(tb).median};
}

template <typename A>
double time_one(int rounds, A&& a) {
  std::vector<double> t;
  for (int r = 0; r < rounds; ++r) t.push_back(bench::mean_call_us(a, 0.02, bench::thread_cpu));
  return bench::stats(t).median;
}

template <int LhsOrder, int RhsOrder>
void eigen(std::int64_t m, std::int64_t n, std::int64_t k, const Operand<float>& a,
           const Operand<float>& b, float* c, std::int64_t ldc, bool accumulate) {
  if (!accumulate)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = 0;
  detail::gemm_eigen<float, LhsOrder, RhsOrder>(m, n, k, a, b, c, ldc);
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t batch = 64;
  int rounds = 7;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc)
      batch = std::atol(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_gemm [--batch 64] [--rounds 7]\n");
      return 2;
    }
  }
  if (batch < 1 || rounds < 1) {
    std::fprintf(stderr, "bench_gemm: --batch and --rounds must be >= 1\n");
    return 2;
  }
  const bench::Peak peak = bench::measure_peak();
  std::printf("CPU: %s; %s; FMA peak %.1f GFLOP/s per core (%s)\n", bench::cpu_model().c_str(),
              bench::compiler().c_str(), peak.per_core, bench::fma_isa());
  std::printf("detail::gemm: %s\n", BACKPROP_GEMM_KERNEL
                                        ? "gemm_kernel.hpp for depths 16 < k <= 2048, else Eigen's"
                                        : "Eigen's kernel (this build has no AVX2+FMA)");
  std::printf("batch %lld, median of %d rounds, us per call (%% of peak)\n\n",
              static_cast<long long>(batch), rounds);
  std::printf("| layer | product | detail::gemm | Eigen | Eigen / gemm |\n|---|---|---|---|---|\n");
  const std::vector<Layer> layers = {{"bn-mlp", 784, 300},   {"bn-mlp", 300, 100},
                                     {"bn-mlp", 100, 10},    {"deep-mlp", 784, 600},
                                     {"deep-mlp", 600, 400}, {"deep-mlp", 400, 200},
                                     {"deep-mlp", 200, 100}, {"deep-mlp", 100, 10}};
  constexpr int R = 1, C = 0;  // Eigen::RowMajor, Eigen::ColMajor
  for (const Layer& l : layers) {
    const std::int64_t n = batch, in = l.in, out = l.out;
    std::vector<float> x(std::size_t(n * in), 0.5f), w(std::size_t(out * in), 0.01f),
        y(std::size_t(n * out)), dy(std::size_t(n * out), 0.25f), dw(std::size_t(out * in)),
        dx(std::size_t(n * in));
    const double flops = 2.0 * double(n) * double(in) * double(out);
    const auto row = [&](const char* name, std::pair<double, double> t) {
      const auto pct = [&](double us) { return flops / (us * 1e-6) / 1e9 / peak.per_core * 100; };
      std::printf("| %s %lld-%lld | %s | %.1f (%.0f%%) | %.1f (%.0f%%) | %.2fx |\n", l.model,
                  static_cast<long long>(in), static_cast<long long>(out), name, t.first,
                  pct(t.first), t.second, pct(t.second), t.second / t.first);
    };
    // As linear.hpp calls them: y = x W^T, dW += dy^T x, dx = dy W.
    const Operand<float> xr{x.data(), in, true}, wt{w.data(), in, false},
        dyt{dy.data(), out, false}, dyr{dy.data(), out, true}, wr{w.data(), in, true};
    row("y = x W^T", time_pair(
                         rounds, [&] { detail::gemm<float>(n, out, in, xr, wt, y.data(), out); },
                         [&] { eigen<R, C>(n, out, in, xr, wt, y.data(), out, false); }));
    row("dW += dy^T x",
        time_pair(
            rounds, [&] { detail::gemm_add<float>(out, in, n, dyt, xr, dw.data(), in); },
            [&] { eigen<C, R>(out, in, n, dyt, xr, dw.data(), in, true); }));
    row("dx = dy W", time_pair(
                         rounds, [&] { detail::gemm<float>(n, in, out, dyr, wr, dx.data(), in); },
                         [&] { eigen<R, R>(n, in, out, dyr, wr, dx.data(), in, false); }));
  }
#if BACKPROP_GEMM_KERNEL
  // Which operand of y = x W^T to copy row-major for the kernel (gemm.hpp, gemm_by_kernel):
  // x^T, for C^T = W x^T stored transposed (what detail::gemm does up to kCopyRowsMax rows),
  // or W^T, for C = x W^T stored row-major; and C^T = W x^T stored row-major, a result in the
  // wrong layout that shows what storing it transposed costs.
  std::printf("\ny = x W^T through the kernel, copy included: us per call (%% of peak)\n\n");
  std::printf(
      "| layer | x^T copied | W^T copied | W^T / x^T | x^T copied, C^T stored row-major |\n"
      "|---|---|---|---|---|\n");
  for (const Layer& l : layers) {
    const std::int64_t n = batch, in = l.in, out = l.out;
    std::vector<float> x(std::size_t(n * in), 0.5f), w(std::size_t(out * in), 0.01f),
        y(std::size_t(n * out)), copied;
    const double flops = 2.0 * double(n) * double(in) * double(out);
    const auto pct = [&](double us) { return flops / (us * 1e-6) / 1e9 / peak.per_core * 100; };
    const auto x_t = [&](bool transposed_store) {
      const detail::Panels<float> xt = detail::copy_panels(in, n, x.data(), in, copied);
      const detail::Strided<float> c{y.data(), transposed_store ? 1 : n,
                                     transposed_store ? out : 1};
      detail::gemm_direct_parallel<float>(out, n, in, {w.data(), in, 1}, xt, c, false);
    };
    const auto w_t = [&] {
      const detail::Panels<float> wt = detail::copy_panels(in, out, w.data(), in, copied);
      detail::gemm_direct_parallel<float>(n, out, in, {x.data(), in, 1}, wt, {y.data(), out, 1},
                                          false);
    };
    const auto [tx, tw] = time_pair(
        rounds, [&] { x_t(true); }, w_t);
    const double tr = time_one(rounds, [&] { x_t(false); });
    std::printf("| %s %lld-%lld | %.1f (%.0f%%) | %.1f (%.0f%%) | %.2fx | %.1f (%.0f%%) |\n",
                l.model, static_cast<long long>(in), static_cast<long long>(out), tx, pct(tx), tw,
                pct(tw), tw / tx, tr, pct(tr));
  }
#endif
  return 0;
}
