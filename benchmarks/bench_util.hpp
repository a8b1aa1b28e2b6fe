// SPDX-License-Identifier: MIT
// Benchmark helpers: clocks, medians, the machine's FMA peak, peak memory, build facts.
#pragma once

#include <sys/resource.h>
#include <time.h>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace bench {

inline double seconds(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
inline double wall() { return seconds(CLOCK_MONOTONIC); }
inline double process_cpu() { return seconds(CLOCK_PROCESS_CPUTIME_ID); }
inline double thread_cpu() { return seconds(CLOCK_THREAD_CPUTIME_ID); }

// Median, min and max of a sample (the median is what we report; min/max show the spread).
struct Stats {
  double median = 0, min = 0, max = 0;
  std::size_t n = 0;
};
inline Stats stats(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  s.n = n;
  return s;
}

/// The mean time of one call of f in microseconds, by `clock`: f is called until `min_seconds`
/// of that clock have passed.
template <typename F>
double mean_call_us(F&& f, double min_seconds, double (*clock)()) {
  int reps = 0;
  const double t0 = clock();
  double dt = 0;
  do {
    f();
    ++reps;
  } while ((dt = clock() - t0) < min_seconds);
  return dt / reps * 1e6;
}

/// Peak resident memory of this process so far (getrusage ru_maxrss), in MiB.
inline double max_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// --- the FMA peak ----------------------------------------------------------------------
// A register-resident loop of independent FMAs: 12 accumulators cover the FMA latency
// (4 cycles) times the FMA ports (2) with room to spare, so the loop runs at the core's
// FMA throughput. Width is what this file was compiled for (-march=native: AVX-512 on
// Zen 4/5), which is also what Eigen's kernels use.
inline const char* fma_isa() {
#if defined(__AVX512F__)
  return "AVX-512 (16 floats per FMA)";
#elif defined(__FMA__)
  return "AVX2+FMA (8 floats per FMA)";
#else
  return "scalar (no FMA ISA enabled at compile time: build with -march=native)";
#endif
}

// Runs `iters` rounds of 12 independent FMAs; returns the flops done. The accumulators are
// twelve named variables (an array makes GCC keep them in memory), and an empty asm
// statement makes them opaque to the optimiser every round (clang otherwise folds the loop
// away). The result goes to sink.
template <typename V, typename Fma>
inline void fma_rounds(std::int64_t iters, V b, V c, V (&out)[12], Fma fma) {
  V a0 = out[0], a1 = out[1], a2 = out[2], a3 = out[3], a4 = out[4], a5 = out[5];
  V a6 = out[6], a7 = out[7], a8 = out[8], a9 = out[9], a10 = out[10], a11 = out[11];
  for (std::int64_t k = 0; k < iters; ++k) {
    a0 = fma(a0, b, c), a1 = fma(a1, b, c), a2 = fma(a2, b, c), a3 = fma(a3, b, c);
    a4 = fma(a4, b, c), a5 = fma(a5, b, c), a6 = fma(a6, b, c), a7 = fma(a7, b, c);
    a8 = fma(a8, b, c), a9 = fma(a9, b, c), a10 = fma(a10, b, c), a11 = fma(a11, b, c);
    __asm__ volatile(""
                     : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6),
                       "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
  out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3, out[4] = a4, out[5] = a5;
  out[6] = a6, out[7] = a7, out[8] = a8, out[9] = a9, out[10] = a10, out[11] = a11;
}

inline double fma_loop(std::int64_t iters, float* sink) {
#if defined(__AVX512F__)
  constexpr int kWidth = 16;
  using V = __m512;
  const auto fma = [](V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); };
  const V b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
#elif defined(__FMA__)
  constexpr int kWidth = 8;
  using V = __m256;
  const auto fma = [](V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); };
  const V b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
#else
  constexpr int kWidth = 1;
  using V = float;
  const auto fma = [](V a, V b, V c) { return a * b + c; };
  const V b = 0.9999999f, c = 1e-7f;
#endif
  V acc[12];
  float lanes[12][kWidth];
  for (int i = 0; i < 12; ++i)
    for (int j = 0; j < kWidth; ++j) lanes[i][j] = static_cast<float>(i);
  std::memcpy(acc, lanes, sizeof acc);
  fma_rounds(iters, b, c, acc, fma);
  std::memcpy(lanes, acc, sizeof acc);
  float total = 0;
  for (int i = 0; i < 12; ++i)
    for (int j = 0; j < kWidth; ++j) total += lanes[i][j];
  *sink = total;
  return 2.0 * 12.0 * kWidth * static_cast<double>(iters);
}

/// The FMA peak of `threads` threads at once, by wall time (aggregate): the best of `rounds`
/// runs of `iters` rounds of the loop on each thread.
inline double threads_peak(int threads, std::int64_t iters, int rounds) {
  const auto n = static_cast<std::size_t>(threads);
  double best = 0;
  for (int r = 0; r < rounds; ++r) {
    std::vector<float> sinks(n);
    std::vector<double> flops(n);
    std::vector<std::thread> others;
    const double w0 = wall();
    for (std::size_t t = 1; t < n; ++t)
      others.emplace_back([&, t] { flops[t] = fma_loop(iters, &sinks[t]); });
    flops[0] = fma_loop(iters, &sinks[0]);
    for (std::thread& t : others) t.join();
    const double w = wall() - w0;
    double total = 0;
    float sink = 0;
    for (std::size_t t = 0; t < n; ++t) {
      total += flops[t];
      sink += sinks[t];
    }
    best = std::max(best, total / w / 1e9);
    if (sink == 12345.0f) std::fputs("", stderr);  // keep the loops observable
  }
  return best;
}

struct Peak {
  double per_core = 0;        // GFLOP/s per core, by thread CPU time (immune to time-sharing)
  double per_core_wall = 0;   // the same by wall time (lower when another process runs)
  double two_cores_wall = 0;  // two threads at once, by wall time (aggregate)
};

/// The FMA peak: the best of several ~0.1 s runs on one thread (CPU time and wall time),
/// then two threads at once (wall time).
inline Peak measure_peak() {
  const std::int64_t iters = 20'000'000;  // 7.7 GFLOP at AVX-512: ~35 ms at 225 GFLOP/s
  Peak p;
  float sink = 0;
  for (int r = 0; r < 7; ++r) {
    const double w0 = wall(), c0 = thread_cpu();
    const double flops = fma_loop(iters, &sink);
    const double c = thread_cpu() - c0, w = wall() - w0;
    p.per_core = std::max(p.per_core, flops / c / 1e9);
    p.per_core_wall = std::max(p.per_core_wall, flops / w / 1e9);
  }
  if (sink == 12345.0f) std::fputs("", stderr);  // keep the loop observable
  p.two_cores_wall = threads_peak(2, iters, 3);
  return p;
}

/// The peak of `threads` threads right now: bench_train times it after each epoch, since on
/// a shared host the cores' speed changes from run to run (start-up peaks of 220-238 GFLOP/s
/// per core on one AMD EPYC Zen 5 under KVM), and two vCPUs sometimes share one core's peak
/// (~230 GFLOP/s for both; docs/benchmarks.md).
inline double peak_now(int threads) { return threads_peak(threads, 10'000'000, 3); }

// --- how far apart the cores are ----------------------------------------------------------
/// The time for a cache line to go to another core and back, in nanoseconds: the median of
/// up to `rounds` exchanges between two threads, each waiting for the other's write, within
/// 50 ms. Two threads that share a product pay it, in latency, whenever one reads data the
/// other wrote last (the batch, activations, gradients). On one AMD EPYC Zen 5 under KVM it
/// read 160-171 ns in some minutes and 531-681 ns in others (inferred: the host moved the
/// two vCPUs further apart and back), and two threads trained bn-mlp 1.09x as fast as one near,
/// 0.93x far (docs/benchmarks.md). So bench_train times it after every epoch of two threads or
/// more. Not pinned: on an idle machine the two threads run on two cores; on a busy one the figure
/// is meaningless but bounded (a waiting thread yields its core now and then).
inline double cross_core_ns(int rounds = 5000) {
  alignas(64) std::atomic<int> ping{0};  // each in a cache line of its own
  alignas(64) std::atomic<int> pong{0};
  const auto spin = [](unsigned spins) {  // unsigned: a long wait wraps, never overflows
    if (spins % 4096 == 0) std::this_thread::yield();
  };
  std::thread other([&] {  // answers ping i with pong i, until ping is -1
    for (int i = 1;; ++i) {
      int v = 0;
      for (unsigned s = 1; (v = ping.load(std::memory_order_acquire)) != i && v >= 0; ++s) spin(s);
      if (v < 0) return;
      pong.store(i, std::memory_order_release);
    }
  });
  std::vector<double> ns;
  const double end = wall() + 0.05;
  for (int i = 1; i <= rounds && wall() < end; ++i) {
    const double t0 = wall();
    ping.store(i, std::memory_order_release);
    for (unsigned s = 1; pong.load(std::memory_order_acquire) != i; ++s) spin(s);
    ns.push_back((wall() - t0) * 1e9);
  }
  ping.store(-1, std::memory_order_release);
  other.join();
  return stats(ns).median;
}

// --- build and machine facts -------------------------------------------------------------
// The model name, with the family and model numbers: under a hypervisor the name may be just
// "AMD EPYC", and the numbers tell the generations apart (AMD family 25 is Zen 3 or Zen 4 by
// model, 26 is Zen 5).
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::string name = "unknown";
  std::string family;
  std::string model;
  auto value = [](const std::string& l) {  // what follows "key\t: "
    const std::size_t colon = l.find(':');
    return colon == std::string::npos || colon + 2 > l.size() ? std::string() : l.substr(colon + 2);
  };
  // The first processor's block. "model name" is tested before "model", which it starts with.
  while (std::getline(in, line) && !line.empty()) {
    if (line.rfind("model name", 0) == 0) {
      if (!value(line).empty()) name = value(line);
    } else if (line.rfind("cpu family", 0) == 0) {
      family = value(line);
    } else if (line.rfind("model", 0) == 0) {
      model = value(line);
    }
  }
  if (family.empty() || model.empty()) return name;
  return name + " (family " + family + ", model " + model + ")";
}

inline std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("g++ ") + __VERSION__;
#else
  return "unknown compiler";
#endif
}

inline std::string eigen_flags() {
  std::string s = "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." +
                  std::to_string(EIGEN_MAJOR_VERSION) + "." + std::to_string(EIGEN_MINOR_VERSION);
  s += ", SIMD: ";
  s += Eigen::SimdInstructionSetsInUse();
#if defined(EIGEN_HAS_OPENMP)
  s += ", OpenMP";
#else
  s += ", no OpenMP";
#endif
#if defined(EIGEN_DONT_PARALLELIZE)
  s += ", EIGEN_DONT_PARALLELIZE";
#endif
#if defined(EIGEN_USE_BLAS)
  s += ", EIGEN_USE_BLAS";
#endif
#if !defined(NDEBUG)
  s += ", assertions ON (not a Release build: numbers are meaningless)";
#endif
  return s;
}

}  // namespace bench
