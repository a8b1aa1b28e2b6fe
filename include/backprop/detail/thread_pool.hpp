// SPDX-License-Identifier: MIT
// backprop: the thread pool behind set_num_threads(), Linear's large products and SGD's updates
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>  // getrusage, for process_preemptions()
#endif

namespace backprop {
namespace detail {

// Why not Eigen's own OpenMP products: they busy-wait on per-panel flags, so when the other
// core is busy a descheduled thread stalls its partner for a whole time slice (measured
// 20-100x slower than one thread, docs/benchmarks.md). Here each product is cut into
// independent blocks, each one single-threaded product (detail/gemm.hpp), and:
//  - the caller runs block 0, then claims every block no helper has started, so a helper
//    that wakes late costs nothing (and with one helper on time, each thread runs the same
//    block of every job of the same shape: its data stays in that core's cache);
//  - a helper polls for new work for a while (kPoll, yielding the core to anyone else who
//    wants it) and then sleeps: waking a sleeping core costs tens of microseconds in a
//    virtual machine, as much as a whole block (with 50 us of polling, helpers were
//    late 14x more often than with 1 ms);
//  - when helpers stall (descheduled mid-block), the next runs skip them for a while
//    (Backoff below);
//  - when the process's threads are short of cores (another program, or more threads than
//    cores), the caller runs alone (Preemptions below).
// The blocks are the same whoever runs them, so the results do not depend on any of this.

// When the caller stops handing jobs to the helpers for a while: after helpers that stalled,
// that is, kept the caller waiting longer than its own share took plus kStall. A helper
// stalls when it is descheduled mid-block (another program, or the host, takes its core), and
// may be again. A helper merely late, by less than kStall, is no reason: waking a sleeping
// helper costs tens of microseconds in a virtual machine, and data the other core wrote
// comes slowly when the host runs the two vCPUs on cores far apart. In eight of nine idle
// bn-mlp runs at batch 64 with the vCPUs near (a cache line's round trip of 135-181 ns),
// such late helpers met 2.8-9.1% of the shared jobs, and backing off after each second one,
// as the pool did before session 20, ran 44-77% of the jobs alone: two threads trained
// 1.04-1.16x faster than one, against 1.39-1.47x with those helpers kept (AMD EPYC Zen 5
// under KVM, docs/benchmarks.md). kStall is longer than those delays and shorter than a
// scheduler's time slice (a few milliseconds). One stall says little on a shared host, so a backoff
// starts only at a second within kWindow shared runs: kMin runs alone, twice as many if the
// first run after them stalls again, up to kMax; a run that does not stall resets the length.
// (kMin went from 8 to 32 earlier, docs/benchmarks.md; 64 is the only window tried.)
class Backoff {
 public:
  static constexpr int kMin = 32, kMax = 8192;
  static constexpr std::int64_t kWindow = 64;
  static constexpr std::chrono::microseconds kStall{1000};

  // Called after every shared run that returned; says how many of the next runs to do alone.
  int after_shared_run(bool stalled) {
    ++runs_;
    if (!stalled) {
      length_ = kMin;
      return 0;
    }
    const bool again = runs_ - last_late_ <= kWindow;
    last_late_ = runs_;
    if (!again) return 0;
    const int alone = length_;
    length_ = std::min(2 * length_, kMax);
    return alone;
  }

 private:
  std::int64_t runs_ = 0, last_late_ = -kWindow;  // shared runs; the last stalled one's number
  int length_ = kMin;                             // of the next backoff
};

// When the caller stops sharing because other threads want our cores: another program, or
// more threads of this one than there are cores. A thread that shares its core with a
// CPU-bound thread is preempted every few milliseconds (the scheduler's time slice), and our
// own yields in a polling loop then give way too; on an idle core only the kernel's short
// tasks preempt it. Two threads then lose to one: each product waits for whichever thread
// the scheduler has just set aside (#10 asks for no worse than 0.95x of one thread), yet
// too few helpers are late (0.2-0.8% of the jobs) to start a Backoff. So every 20 ms of
// shared runs the caller reads how many times the process's threads were preempted
// (getrusage's ru_nivcsw; on Linux a yield that gave way to another thread counts): 3 or
// more per 20 ms (busy) in two windows in a row, and it runs alone for 50 ms, twice as long
// if the first window after that is busy again, up to 1.6 s; a quiet window resets the
// length. Alone, the helpers sleep and leave their cores to the others, and products and
// SGD's updates are not split between threads (parts()), so the caller runs as one thread
// would; each probe costs one window shared on a busy core.
// Measured over 20 ms windows of shared runs (bn-mlp and deep-mlp b64, two threads, AMD EPYC
// Zen 4 under KVM, Linux 6.18, before kPause): idle, 0-2 preemptions in 722 of 757 windows
// (some of the other 35 spanned bench_train's own two-thread peak timing, which kPause now
// leaves out); beside a shell busy loop, 3 or more in 1135 of 1140, about one every 4 ms.
// Not measured: kernels with longer slices (older Linux gave up to 12 ms on many cores),
// where a competitor would preempt less often and might not reach 3 per window.
class Preemptions {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kWindow = std::chrono::milliseconds(20);
  static constexpr long kMany = 3;  // preemptions in one window
  static constexpr Clock::duration kMin = std::chrono::milliseconds(50);
  static constexpr Clock::duration kMax = std::chrono::milliseconds(1600);
  static constexpr Clock::duration kPause = std::chrono::milliseconds(20);

  // Called after every shared run that returned, with the times it started and ended and a
  // callable that returns the process's preemptions so far (read when a window starts or
  // ends). Says how long to run alone from now; zero to go on sharing.
  template <typename Count>
  Clock::duration after_shared_run(Clock::time_point start, Clock::time_point end, Count&& count) {
    // A window starts at the end of the first shared run, of the first after running alone,
    // and of the first after a pause longer than kPause: whatever ran in a pause (the
    // caller's own work, other programs while the helpers slept) says nothing about sharing,
    // and two busy windows with a pause between are not "in a row". kPause is longer than a
    // time slice, so a caller preempted between two runs does not make a pause.
    const bool pause = start - last_ > kPause;
    last_ = end;
    if (pause) streak_ = 0;
    if (!started_ || pause) {
      started_ = true;
      start_ = end;
      at_start_ = count();
      return Clock::duration::zero();
    }
    if (end - start_ < kWindow) return Clock::duration::zero();
    const long n = count();
    // kMany per kWindow or more; a window ends at the first run after 20 ms, so it may be longer
    const bool many = (n - at_start_) * kWindow.count() >= kMany * (end - start_).count();
    start_ = end;
    at_start_ = n;
    if (!many) {
      streak_ = 0;
      probing_ = false;
      length_ = kMin;
      return Clock::duration::zero();
    }
    ++windows_;
    if (!probing_ && ++streak_ < 2) return Clock::duration::zero();
    const Clock::duration alone = length_;
    length_ = std::min(2 * length_, kMax);
    streak_ = 0;
    probing_ = true;   // if the first window after the alone time is busy, alone again at once
    started_ = false;  // that window starts when sharing does
    return alone;
  }

  // Called after every run of a Backoff (stalled helpers): those runs are the pool's own work,
  // not a pause, so the window goes on through them. Else, when helpers are often late
  // because the threads are short of cores, every Backoff would break the windows "in a
  // row" that show it (a test with more spinning threads than cores took up to 4.5 s under
  // ThreadSanitizer to find two).
  void after_backoff_run(Clock::time_point end) { last_ = end; }

  std::int64_t windows() const { return windows_; }  // of many preemptions, for stats

 private:
  bool started_ = false, probing_ = false;
  Clock::time_point start_{}, last_{};  // the window's start; the last shared run's end
  long at_start_ = 0;
  int streak_ = 0;  // windows of many preemptions in a row
  Clock::duration length_ = kMin;
  std::int64_t windows_ = 0;
};

// The process's threads' preemptions so far (involuntary context switches); zero where
// getrusage is missing, which leaves Preemptions quiet.
inline long process_preemptions() {
#if defined(__unix__) || defined(__APPLE__)
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) == 0) return u.ru_nivcsw;
#endif
  return 0;
}

class ThreadPool {
 public:
  ThreadPool() = default;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() { resize(1); }

  int size() const { return static_cast<int>(helpers_.size()) + 1; }

  // What run() did with the jobs (products, SGD's updates) it was given since the last
  // reset_stats(), for benchmarks: why two threads were not twice as fast. Not counted: jobs
  // of one block, jobs on a pool of one thread, jobs that found the pool taken.
  struct Stats {
    std::int64_t shared = 0;     // handed to the helpers
    std::int64_t late = 0;       // of those, the caller waited for a helper longer than it worked
    std::int64_t stalled = 0;    // of those, by more than Backoff::kStall longer
    std::int64_t alone = 0;      // run by the caller alone (a Backoff, or after preemptions)
    std::int64_t preempted = 0;  // 20 ms windows in which the process's threads were preempted
                                 // 3 times or more per 20 ms (Preemptions)
    std::int64_t alone_us = 0;   // the alone times those decided, in microseconds, each
                                 // counted in full when decided
    // While alone, products and SGD's updates are not split, so they reach run() (and these
    // counts) only if they still ask for several blocks.
  };
  Stats stats() const {
    return {shared_.load(), late_.load(),      stalled_.load(),
            alone_.load(),  preempted_.load(), alone_us_.load()};
  }
  void reset_stats() {  // not while run() is in progress
    shared_ = late_ = stalled_ = alone_ = preempted_ = alone_us_ = 0;
  }

  // How many parts to split work into now (run_parts, products): one while the caller runs
  // alone after preemptions, so that it does the work as one thread would, rather than as
  // parts run one after another; else one per thread. Any thread may call it, but not
  // while resize() runs.
  int parts() const { return alone_now() ? 1 : size(); }

  // The caller plus threads - 1 helpers. Not while run() is in progress.
  void resize(int threads) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);  // under the mutex, so a helper about to sleep sees it
    }
    wake_.notify_all();
    for (std::thread& t : helpers_) t.join();
    helpers_.clear();
    serial_runs_ = 0;
    backoff_ = Backoff{};
    preemptions_ = Preemptions{};
    alone_until_ = 0;
    stop_.store(false);
    // A new helper starts from the current generation: the last job is finished.
    for (int i = 1; i < threads; ++i)
      helpers_.emplace_back([this, g = generation_.load()] { helper_loop(g); });
  }

  // Calls fn(ctx, i) once for every i in [0, n), on the caller and the helpers, and returns
  // when all calls have returned; then rethrows the first exception any call threw. A plain
  // function pointer, not std::function, so that a training step never allocates. Safe to
  // call from several threads at once, and from inside fn: only one caller at a time uses
  // the helpers, the others run their blocks themselves.
  void run(std::int64_t n, void (*fn)(void*, std::int64_t), void* ctx) {
#if defined(BACKPROP_BENCH_OPENMP) && defined(_OPENMP)
    // benchmarks/bench_train_omp only (docs/benchmarks.md, the OpenMP head-to-head): the
    // same blocks on OpenMP's threads, one block per thread if n is the thread count. Not
    // a supported option: no exception may leave fn, and the helpers above sit idle.
    if (n > 1 && size() > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(size())
      for (std::int64_t i = 0; i < n; ++i) fn(ctx, i);
      return;
    }
#endif
    // Another thread (or a nested call) already owns the pool: run serially, touch nothing.
    if (helpers_.empty() || n <= 1 || busy_.exchange(true)) {
      for (std::int64_t i = 0; i < n; ++i) fn(ctx, i);
      return;
    }
    struct Release {
      std::atomic<bool>& b;
      ~Release() { b.store(false); }
    } release{busy_};
    if (serial_runs_ > 0) {
      --serial_runs_;
      alone_.fetch_add(1, std::memory_order_relaxed);
      for (std::int64_t i = 0; i < n; ++i) fn(ctx, i);
      preemptions_.after_backoff_run(Clock::now());
      return;
    }
    if (alone_now()) {
      alone_.fetch_add(1, std::memory_order_relaxed);
      for (std::int64_t i = 0; i < n; ++i) fn(ctx, i);
      return;
    }
    Job job;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Block indices grow across jobs and are claimed by compare-and-swap only below
      // job.end, so a helper still holding an old job can never take a block of this one.
      // The caller takes block 0 before any helper can claim one: a thread that runs the
      // same part of every job keeps that part's data in its own core's cache.
      const std::int64_t begin = next_.fetch_add(1);
      job = {fn, ctx, begin, begin + n};
      job_ = job;
      finished_.store(0);
      generation_.fetch_add(1);
    }
    if (sleepers_.load() > 0) wake_.notify_all();
    shared_.fetch_add(1, std::memory_order_relaxed);
    const Clock::time_point start = Clock::now();
    run_block(job, job.begin);
    work(job);
    const Clock::time_point mine = Clock::now();
    while (finished_.load() != n && Clock::now() - mine < kPoll) std::this_thread::yield();
    if (finished_.load() != n) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return finished_.load() == n; });
    }
    if (error_) {  // every block has returned: nobody touches ctx any more
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
    const Clock::time_point end = Clock::now();
    const bool late = end - mine > mine - start;  // waited longer than it worked
    const bool stalled = end - mine > mine - start + Backoff::kStall;
    if (late) late_.fetch_add(1, std::memory_order_relaxed);
    if (stalled) stalled_.fetch_add(1, std::memory_order_relaxed);
    serial_runs_ = backoff_.after_shared_run(stalled);
    const std::int64_t windows = preemptions_.windows();
    const Clock::duration alone = preemptions_.after_shared_run(start, end, process_preemptions);
    if (alone != Clock::duration::zero()) {
      alone_until_.store((end + alone).time_since_epoch().count(), std::memory_order_relaxed);
      alone_us_.fetch_add(std::chrono::duration_cast<std::chrono::microseconds>(alone).count(),
                          std::memory_order_relaxed);
    }
    preempted_.fetch_add(preemptions_.windows() - windows, std::memory_order_relaxed);
  }

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::microseconds kPoll{1000};

  struct Job {
    void (*fn)(void*, std::int64_t) = nullptr;
    void* ctx = nullptr;
    std::int64_t begin = 0, end = 0;
  };

  bool alone_now() const {
    const Clock::rep until = alone_until_.load(std::memory_order_relaxed);
    return until != 0 && Clock::now().time_since_epoch().count() < until;
  }

  // Claims and runs blocks of `job` until none is left.
  void work(const Job& job) {
    for (;;) {
      std::int64_t i = next_.load();
      do {
        if (i >= job.end) return;
      } while (!next_.compare_exchange_weak(i, i + 1));
      run_block(job, i);
    }
  }

  // Runs block i (an index of next_'s sequence) of `job` and counts it finished.
  void run_block(const Job& job, std::int64_t i) {
    try {
      job.fn(job.ctx, i - job.begin);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    if (finished_.fetch_add(1) + 1 == job.end - job.begin) {
      { std::lock_guard<std::mutex> lock(mutex_); }  // the caller is waiting or will see it
      done_.notify_one();
    }
  }

  void helper_loop(std::uint64_t seen) {
    for (;;) {
      // Poll for a new job for kPoll, then sleep until one comes.
      const Clock::time_point idle = Clock::now();
      while (generation_.load() == seen && !stop_.load() && Clock::now() - idle < kPoll)
        std::this_thread::yield();
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ++sleepers_;
        wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
        --sleepers_;
        if (stop_.load()) return;
        seen = generation_.load();
        job = job_;
      }
      work(job);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> helpers_;
  std::atomic<bool> stop_{false};             // written under mutex_; read by polling helpers too
  Job job_;                                   // guarded by mutex_
  std::atomic<std::uint64_t> generation_{0};  // written under mutex_
  std::atomic<int> sleepers_{0};              // helpers waiting on wake_
  std::atomic<std::int64_t> next_{0};
  std::atomic<std::int64_t> finished_{0};
  int serial_runs_ = 0;  // runs left to do alone; this and the next two: the busy_ owner's only
  Backoff backoff_;
  Preemptions preemptions_;
  std::atomic<Clock::rep> alone_until_{0};  // after preemptions, alone until then (or 0)
  std::atomic<bool> busy_{false};           // a thread is in run()'s parallel path
  std::atomic<std::int64_t> shared_{0}, late_{0}, stalled_{0}, alone_{0}, preempted_{0},
      alone_us_{0};           // stats()
  std::exception_ptr error_;  // first exception of the current job
};

// The pool every layer shares, created on first use and never destroyed: a layer used from
// another static destructor still finds it, and a child made by fork() (which has none of
// the parent's helper threads) exits without waiting for them. The helpers end with the
// process.
inline ThreadPool& thread_pool() {
  static ThreadPool& pool = *new ThreadPool;
  return pool;
}

// Cuts [0, total) into one contiguous part per thread (fewer when there are fewer than
// `align` elements per thread; one while the pool runs alone after preemptions), each a
// multiple of `align` long except the last, and calls part(begin, end) for each on the
// pool's threads, the caller the first; or part(begin, end, index) with the part's index
// (0 .. parts - 1) if `part` takes three arguments. Only for work whose result does not
// depend on where it is cut. With one helper on time (two threads), each core computes the
// same part of every step, from the same data, and keeps it in its own cache.
template <typename F>
void run_parts(std::int64_t total, std::int64_t align, F& part) {
  struct Ctx {
    F* part;
    std::int64_t total, align, units, parts;
  } ctx{&part, total, align, (total + align - 1) / align, 0};
  ctx.parts = std::min<std::int64_t>(ctx.units, thread_pool().parts());
  thread_pool().run(
      ctx.parts,
      [](void* p, std::int64_t i) {
        const Ctx& c = *static_cast<Ctx*>(p);
        const std::int64_t begin = i * c.units / c.parts * c.align;
        const std::int64_t end = std::min(c.total, (i + 1) * c.units / c.parts * c.align);
        if constexpr (std::is_invocable_v<F&, std::int64_t, std::int64_t, std::int64_t>)
          (*c.part)(begin, end, i);
        else
          (*c.part)(begin, end);
      },
      &ctx);
}

}  // namespace detail
}  // namespace backprop
