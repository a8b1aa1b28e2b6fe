// SPDX-License-Identifier: MIT
// parallel.hpp: the thread pool runs every block exactly once, and training gives bitwise the
// same model with 1, 2, 3, 4 and 8 threads (products through our kernel are cut into one part
// per thread, and each element is the same chain of FMAs wherever the cut falls; SGD updates
// each element alone).
#include <algorithm>
#include <atomic>
#include <backprop/backprop.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../examples/mnist/models.hpp"

using namespace backprop;

namespace {
// Restores one thread when a test ends, whatever it set.
struct OneThreadAfter {
  ~OneThreadAfter() { set_num_threads(1); }
};

// Trains reference 1's model for a few SGD-momentum steps on fixed random data; returns
// every parameter and buffer, flattened.
std::vector<float> train_steps(int threads, Index batch) {
  set_num_threads(threads);
  manual_seed(3);
  mnist::Net<float> net;
  net.set_input_requires_grad(false);
  SGD<float> opt(net.parameters(), 0.05, 0.5);
  CrossEntropyLoss<float> loss;
  Generator gen(4);
  const Tensor<float> x = Tensor<float>::randn({batch, 784}, gen);
  Tensor<std::int64_t> labels({batch});
  for (Index i = 0; i < batch; ++i) labels[i] = static_cast<std::int64_t>(gen.below(10));
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    loss.forward(net.forward(x), labels);
    net.backward(loss.backward());
    opt.step();
  }
  std::vector<float> out;
  for (const StateEntry<float>& e : net.state_dict())
    if (auto* t = std::get_if<Tensor<float>*>(&e.tensor))
      out.insert(out.end(), (*t)->data(), (*t)->data() + (*t)->numel());
  return out;
}
}  // namespace

TEST_CASE("ThreadPool: every block runs exactly once, for many jobs and sizes", "[parallel]") {
  OneThreadAfter restore;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    CHECK(get_num_threads() == threads);
    detail::thread_pool().reset_stats();
    for (std::int64_t n = 0; n < 40; ++n) {
      for (int repeat = 0; repeat < 25; ++repeat) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        detail::thread_pool().run(
            n,
            [](void* p, std::int64_t i) {
              (*static_cast<std::vector<std::atomic<int>>*>(p))[std::size_t(i)]++;
            },
            &hits);
        for (std::int64_t i = 0; i < n; ++i) REQUIRE(hits[std::size_t(i)].load() == 1);
      }
    }
    // The benchmarks' statistics: every job of two blocks or more (38 sizes x 25) was either
    // shared with the helpers or run alone during a backoff.
    const detail::ThreadPool::Stats stats = detail::thread_pool().stats();
    INFO(threads << " threads: shared " << stats.shared << ", late " << stats.late << ", alone "
                 << stats.alone);
    CHECK(stats.shared + stats.alone == (threads == 1 ? 0 : 38 * 25));
    CHECK(stats.late <= stats.shared);
    CHECK((threads == 1 || stats.shared > 0));
  }
}

TEST_CASE("Training is bitwise identical with 1, 2, 3, 4 and 8 threads", "[parallel]") {
  OneThreadAfter restore;
  for (Index batch : {64, 100, 256}) {  // every product but the last layer's is split
    INFO("batch " << batch);
    const std::vector<float> one = train_steps(1, batch);
    for (int threads : {2, 3, 4, 8}) {
      INFO(threads << " threads");
      CHECK(train_steps(threads, batch) == one);
    }
  }
}

TEST_CASE("set_num_threads: n must be >= 1", "[parallel][errors]") {
  OneThreadAfter restore;
  CHECK_THROWS_WITH(set_num_threads(0), Catch::Contains("n must be >= 1, got 0"));
}

TEST_CASE("ThreadPool: a helper runs the block the caller cannot reach", "[parallel]") {
  // Block 0 (the caller's) waits until block 1 has started, so block 1 must run on a
  // helper: this fails if the helpers never take work.
  OneThreadAfter restore;
  struct Ctx {
    std::atomic<bool> started1{false};
    std::thread::id ran[2];
    bool timed_out = false;
  };
  for (int repeat = 0; repeat < 20; ++repeat) {
    set_num_threads(2);  // also resets Backoff and Preemptions: this run is shared
    Ctx ctx;
    detail::thread_pool().run(
        2,
        [](void* p, std::int64_t i) {
          Ctx& c = *static_cast<Ctx*>(p);
          c.ran[i] = std::this_thread::get_id();
          if (i == 1) {
            c.started1 = true;
            return;
          }
          const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
          while (!c.started1 && std::chrono::steady_clock::now() < give_up)
            std::this_thread::yield();
          c.timed_out = !c.started1;
        },
        &ctx);
    REQUIRE_FALSE(ctx.timed_out);
    REQUIRE(ctx.ran[0] != ctx.ran[1]);
  }
}

TEST_CASE("ThreadPool's Backoff: a second late helper within 64 shared runs, then doubling",
          "[parallel]") {
  detail::Backoff b;
  CHECK(b.after_shared_run(true) == 0);  // one late helper: no backoff
  for (int i = 0; i < 63; ++i) CHECK(b.after_shared_run(false) == 0);
  CHECK(b.after_shared_run(true) == 32);  // a second, 64 runs after the first
  CHECK(b.after_shared_run(true) == 64);  // the first run after the backoff late again
  CHECK(b.after_shared_run(false) == 0);  // on time: the length starts again from 32
  CHECK(b.after_shared_run(true) == 32);  // 2 runs after the last late one
  for (int i = 0; i < 64; ++i) CHECK(b.after_shared_run(false) == 0);
  CHECK(b.after_shared_run(true) == 0);  // 65 runs after the last late one: a first again
  int length = 32;
  for (int i = 0; i < 12; ++i, length = std::min(2 * length, 8192))
    CHECK(b.after_shared_run(true) == length);  // late every time: 32, 64, ..., 8192, 8192
}

TEST_CASE("ThreadPool's Preemptions: two busy windows in a row, then doubling", "[parallel]") {
  using P = detail::Preemptions;
  using ms = std::chrono::milliseconds;
  P p;
  P::Clock::time_point t{};  // the end of the last run
  long preemptions = 0;
  int reads = 0;
  const auto count = [&] {
    ++reads;
    return preemptions;
  };
  // A run of `run` that starts `gap` after the last one ended, with `more` preemptions.
  const auto after = [&](ms gap, ms run, long more = 0) {
    const P::Clock::time_point start = t + gap;
    t = start + run;
    preemptions += more;
    return p.after_shared_run(start, t, count);
  };
  const P::Clock::duration zero = P::Clock::duration::zero();
  CHECK(after(ms(0), ms(1)) == zero);  // the first run starts a window
  CHECK(reads == 1);
  for (int i = 0; i < 19; ++i) CHECK(after(ms(0), ms(1), 1) == zero);  // 19 ms: not read
  CHECK(reads == 1);
  CHECK(after(ms(0), ms(1)) == zero);  // 20 ms, 19 preemptions: busy, but only the first
  CHECK(reads == 2);
  CHECK(after(ms(0), ms(20), 2) == zero);    // 2 in 20 ms: quiet, the count starts again
  CHECK(after(ms(0), ms(20), 3) == zero);    // 3: busy, the first
  CHECK(after(ms(0), ms(20), 3) == ms(50));  // the second in a row: 50 ms alone
  CHECK(p.windows() == 3);
  // After running alone: the next run starts a window (whatever the count did meanwhile),
  // and a busy first window doubles the time alone at once.
  CHECK(after(ms(50), ms(1), 1000) == zero);
  CHECK(after(ms(0), ms(20), 3) == ms(100));
  for (int length : {200, 400, 800, 1600, 1600}) {
    CHECK(after(ms(length / 2), ms(1)) == zero);
    CHECK(after(ms(0), ms(20), 3) == ms(length));
  }
  // A quiet first window ends the probing: the length starts again from 50 ms, after two.
  CHECK(after(ms(1600), ms(1)) == zero);
  CHECK(after(ms(0), ms(20), 2) == zero);
  CHECK(after(ms(0), ms(20), 3) == zero);
  CHECK(after(ms(0), ms(20), 3) == ms(50));
  // The rule is a rate: a 40 ms window needs 6.
  CHECK(after(ms(50), ms(1)) == zero);
  CHECK(after(ms(0), ms(40), 5) == zero);  // quiet: 50 ms again, after two
  CHECK(after(ms(0), ms(40), 6) == zero);
  CHECK(after(ms(0), ms(40), 6) == ms(50));
  // A pause of more than 20 ms between shared runs (the caller's own work, other programs)
  // starts a new window and judges nothing, however many preemptions it saw; and the busy
  // window before it and the one after are not "in a row".
  CHECK(after(ms(100), ms(1)) == zero);
  CHECK(after(ms(0), ms(10), 1) == zero);
  CHECK(after(ms(0), ms(10), 1) == zero);     // a quiet window of 20 ms: the length is 50 again
  CHECK(after(ms(0), ms(20), 3) == zero);     // busy: the first
  CHECK(after(ms(21), ms(20), 100) == zero);  // after a pause: a new window, not judged
  CHECK(after(ms(0), ms(20), 3) == zero);     // busy, but the first after the pause
  CHECK(after(ms(20), ms(20), 6) == ms(50));  // a gap of 20 ms is no pause: in a row
  // (that window ran 40 ms, so it needed 6)
  // Runs of a Backoff (late helpers) are no pause either: the window goes on through them.
  CHECK(after(ms(100), ms(1)) == zero);
  CHECK(after(ms(0), ms(20), 2) == zero);                         // quiet: the probing ends
  CHECK(after(ms(0), ms(20), 3) == zero);                         // busy: the first
  for (int i = 0; i < 10; ++i) p.after_backoff_run(t += ms(10));  // 100 ms of Backoff runs
  CHECK(after(ms(0), ms(1), 16) == ms(50));  // a 101 ms window with 16: busy, the second
}

// Linux only: there getrusage counts the preemptions this relies on (elsewhere the count
// may stay 0, and the pool then never runs alone for this reason).
#ifdef __linux__
TEST_CASE("ThreadPool: the caller runs alone when busy threads outnumber the cores", "[parallel]") {
  // Spinning threads, one more than the cores, leave more runnable threads than cores, so the
  // scheduler preempts some thread of this process every few milliseconds: two 20 ms windows in a
  // row find it, and the pool runs alone. (The count covers the whole process, spinners included:
  // the rule reads "this process's threads are short of cores", whoever takes them.)
  OneThreadAfter restore;
  set_num_threads(2);  // fresh Preemptions
  detail::ThreadPool& pool = detail::thread_pool();
  pool.reset_stats();
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i <= cores; ++i)
    spinners.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  using Clock = std::chrono::steady_clock;
  // Give up rather than hang where the counts stay low.
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(20);
  std::atomic<std::int64_t> blocks{0};
  while (pool.stats().alone_us == 0 && Clock::now() < give_up)
    pool.run(
        2,
        [](void* p, std::int64_t) {
          const Clock::time_point until = Clock::now() + std::chrono::microseconds(200);
          while (Clock::now() < until) {
          }
          static_cast<std::atomic<std::int64_t>*>(p)->fetch_add(1);
        },
        &blocks);
  stop = true;
  for (std::thread& t : spinners) t.join();
  const detail::ThreadPool::Stats s = pool.stats();
  INFO("shared " << s.shared << ", preempted windows " << s.preempted << ", alone " << s.alone_us
                 << " us");
  CHECK(s.preempted >= 2);
  CHECK(s.alone_us == 50000);                        // the first time alone
  CHECK(blocks.load() == 2 * (s.shared + s.alone));  // every run counted once, both blocks ran
}
#endif

TEST_CASE("ThreadPool: late helpers are counted, and the second stalled one starts a backoff",
          "[parallel]") {
  OneThreadAfter restore;
  set_num_threads(2);  // a fresh Backoff and Preemptions, so the runs below are shared
  detail::ThreadPool& pool = detail::thread_pool();
  pool.reset_stats();
  // A job whose helper is late for sure: block 0 (the caller's) waits until block 1 has
  // started on the helper and notes how long that took; block 1 then takes that long plus
  // `extra_us`, so the caller waits for it longer than it worked itself, by about extra_us.
  struct Late {
    std::atomic<bool> started1{false};
    std::atomic<std::int64_t> worked_us{-1};
    std::atomic<bool> timed_out{false};
    std::int64_t extra_us = 0;
  };
  const auto late_job = [&pool](std::int64_t extra_us) {
    Late ctx;
    ctx.extra_us = extra_us;
    pool.run(
        2,
        [](void* p, std::int64_t i) {
          using Clock = std::chrono::steady_clock;
          Late& c = *static_cast<Late*>(p);
          if (i == 1) {
            c.started1 = true;
            while (c.worked_us.load() < 0) std::this_thread::yield();
            if (c.timed_out) return;  // a failure already: do not make it slower
            std::this_thread::sleep_for(std::chrono::microseconds(c.worked_us.load() + c.extra_us));
            return;
          }
          const Clock::time_point start = Clock::now(), give_up = start + std::chrono::seconds(10);
          while (!c.started1 && Clock::now() < give_up) std::this_thread::yield();
          c.timed_out = !c.started1;
          const auto worked =
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
          c.worked_us = worked.count() + 1;
        },
        &ctx);
    return !ctx.timed_out;
  };
  const auto plain_job = [&pool] {
    pool.run(
        2, [](void*, std::int64_t) {}, nullptr);
  };
  // Helpers late by 600 us, less than Backoff::kStall (a wake from sleep, data from a far
  // core): counted, but the jobs after them stay shared; unless a loaded machine stretched
  // both into stalls. (600 us: the caller may lose its core for a moment between its own two
  // clock reads. The counts are read before the plain job, whose helper may be late too.)
  REQUIRE(late_job(600));
  REQUIRE(late_job(600));
  detail::ThreadPool::Stats s = pool.stats();
  INFO("stalled " << s.stalled);
  CHECK(s.late == 2);
  plain_job();
  CHECK((pool.stats().alone == 0 || s.stalled == 2));
  // Stalled helpers (late by 500 ms: descheduled, say): the second starts a backoff.
  set_num_threads(2);  // a fresh Backoff
  pool.reset_stats();
  const std::int64_t stall = 500000;
  REQUIRE(late_job(stall));
  s = pool.stats();
  CHECK(s.shared == 1);
  CHECK(s.late == 1);
  CHECK(s.stalled == 1);
  CHECK(s.alone == 0);
  // The second stalled job is still shared (one stall starts no backoff; run alone, its
  // block 0 would wait in vain for block 1), and then the next 32 jobs run alone.
  REQUIRE(late_job(stall));
  s = pool.stats();
  CHECK(s.shared == 2);
  CHECK(s.stalled == 2);
  for (int i = 0; i < 32; ++i) plain_job();
  s = pool.stats();
  CHECK(s.shared == 2);
  CHECK(s.alone == 32);
  plain_job();
  CHECK(pool.stats().shared == 3);
}

TEST_CASE("ThreadPool: an exception in a block is rethrown after every block returned",
          "[parallel]") {
  OneThreadAfter restore;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<std::atomic<int>> hits(8);
    auto throwing = [](void* p, std::int64_t i) {
      (*static_cast<std::vector<std::atomic<int>>*>(p))[std::size_t(i)]++;
      if (i == 0) throw std::runtime_error("block 0 failed");
    };
    CHECK_THROWS_WITH(detail::thread_pool().run(8, throwing, &hits), "block 0 failed");
    if (threads == 2)  // the helpers finish the job's other blocks before run() returns
      for (std::size_t i = 0; i < hits.size(); ++i) CHECK(hits[i].load() == 1);
    // The pool is usable afterwards, and the next job's blocks each run once.
    std::vector<std::atomic<int>> next(5);
    detail::thread_pool().run(
        5,
        [](void* p, std::int64_t i) {
          (*static_cast<std::vector<std::atomic<int>>*>(p))[std::size_t(i)]++;
        },
        &next);
    for (auto& h : next) CHECK(h.load() == 1);
  }
}

TEST_CASE("Two threads training their own models at once share the pool safely", "[parallel]") {
  // Only one caller uses the helpers at a time; the other runs its blocks itself. Before
  // that rule, two callers reset each other's job and both waited for ever.
  OneThreadAfter restore;
  // The models are built here, one after the other: manual_seed() is process-wide.
  auto make = [] {
    manual_seed(3);
    auto net = std::make_unique<mnist::Net<float>>();
    net->set_input_requires_grad(false);
    return net;
  };
  auto train = [](mnist::Net<float>& net, std::vector<float>& out) {
    SGD<float> opt(net.parameters(), 0.05, 0.5);
    CrossEntropyLoss<float> loss;
    Generator gen(4);
    const Tensor<float> x = Tensor<float>::randn({256, 784}, gen);
    Tensor<std::int64_t> labels({256});
    for (Index i = 0; i < 256; ++i) labels[i] = static_cast<std::int64_t>(gen.below(10));
    for (int step = 0; step < 20; ++step) {
      opt.zero_grad();
      loss.forward(net.forward(x), labels);
      net.backward(loss.backward());
      opt.step();
    }
    for (const Parameter<float>& p : net.parameters())
      out.insert(out.end(), p.value->data(), p.value->data() + p.value->numel());
  };
  auto serial_net = make(), net_a = make(), net_b = make();
  std::vector<float> serial, a, b;
  set_num_threads(1);
  train(*serial_net, serial);
  set_num_threads(2);
  std::thread t1([&] { train(*net_a, a); });
  std::thread t2([&] { train(*net_b, b); });
  t1.join();
  t2.join();
  CHECK(a == serial);
  CHECK(b == serial);
}
