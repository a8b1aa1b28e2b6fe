// SPDX-License-Identifier: MIT
// bench_train: training and inference speed of the two reference MNIST models.
//
// Run (Release build, see benchmarks/README.md):
//   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++
//   cmake --build build-bench -j2 --target bench_train
//   build-bench/benchmarks/bench_train --data data/mnist               # every configuration
//   build-bench/benchmarks/bench_train --models bn-mlp --batches 64 --threads 1 --epochs 5
//   benchmarks/compare.sh                                 # side by side with PyTorch
//
// For each configuration (model, batch size, threads) it
//   1. validates: one training step (loss, logits, every gradient, the SGD update) against
//      the plain double-precision loops of reference_step.hpp, and the per-layer chain the
//      time split uses against model.forward, bit for bit; it stops if either disagrees;
//   2. times `warmup` + `epochs` full training epochs (shuffled DataLoader, zero_grad(true),
//      forward, loss, backward, SGD step: the example's loop without its bookkeeping) and
//      reports the median epoch with min/max;
//   3. times inference (eval mode under a NoGradGuard, forward only) over the 60k training
//      images;
//   4. splits one instrumented epoch's step time into GEMMs, Linear's other work, BatchNorm,
//      ReLU, loss, data and optimizer (GEMM time: the layer's three products re-timed
//      alone at the same shapes);
//   5. relates the GEMM flops to the FMA peak it measured at start-up, and each epoch's to
//      the peak timed right after that epoch (a shared host's speed changes from run to
//      run), and reports the peak resident memory (getrusage ru_maxrss; one process per
//      configuration gives a per-configuration figure, as compare.sh does);
//   6. with threads, counts what the pool did with the timed epochs' jobs (products and SGD
//      updates): shared with the helpers, of those how many waited for a late helper and
//      for a stalled one (late by over 1 ms, Backoff in detail/thread_pool.hpp), and
//      how many ran on one thread during a backoff or while running alone; and how many
//      20 ms windows found the process's threads short of cores, and how long those sent
//      the caller alone (Preemptions in detail/thread_pool.hpp).
// Lines starting with "RESULT " are for scripts (compare.sh); the rest is for people.
#include <backprop/backprop.hpp>
#include <backprop/io/mnist.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "models.hpp"
#include "reference_step.hpp"

#ifndef BENCH_DEFAULT_MNIST_DIR
#define BENCH_DEFAULT_MNIST_DIR "data/mnist"
#endif

namespace {

using namespace backprop;
using io::Batch;
using io::DataLoader;
using io::MnistDataset;

struct Options {
  std::string data = BENCH_DEFAULT_MNIST_DIR;
  std::vector<std::string> models = {"bn-mlp", "deep-mlp"};
  std::vector<Index> batches = {64, 128, 256};
  std::vector<int> threads = {1, 2};
  int epochs = 5, warmup = 1, infer_passes = 3, warmup_steps = 0;
  double budget = 0;  // seconds per timed epoch or inference pass before extrapolating; 0: none
  bool validate = true, split = true, peak_only = false;
};

const char* const kUsage =
    "usage: bench_train [--data DIR] [--models bn-mlp,deep-mlp] [--batches 64,128,256]\n"
    "                   [--threads 1,2] [--epochs 5] [--warmup 1] [--warmup-steps 0]\n"
    "                   [--infer-passes 3] [--epoch-budget SEC] [--no-validate] [--no-split]\n"
    "                   [--peak-only]\n"
    "Times training epochs (median of --epochs after --warmup) and inference of the reference\n"
    "models on MNIST; see the comment at the top of benchmarks/bench_train.cpp.\n"
    "--epoch-budget stops an epoch (or inference pass) after SEC seconds and extrapolates its\n"
    "time to the whole epoch (reported as partial): a bound on the run time of a slow case.\n"
    "DIR defaults to $MNIST_DIR, else " BENCH_DEFAULT_MNIST_DIR ".\n";

template <typename T>
std::vector<T> parse_list(const std::string& s) {
  std::vector<T> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::stringstream one(item);
    T v{};
    if (!(one >> v)) throw std::invalid_argument("bad list item '" + item + "' in '" + s + "'");
    out.push_back(v);
  }
  if (out.empty()) throw std::invalid_argument("empty list");
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  if (const char* env = std::getenv("MNIST_DIR")) o.data = env;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--data")
      o.data = value();
    else if (a == "--models")
      o.models = parse_list<std::string>(value());
    else if (a == "--batches")
      o.batches = parse_list<Index>(value());
    else if (a == "--threads")
      o.threads = parse_list<int>(value());
    else if (a == "--epochs")
      o.epochs = std::stoi(value());
    else if (a == "--warmup")
      o.warmup = std::stoi(value());
    else if (a == "--infer-passes")
      o.infer_passes = std::stoi(value());
    else if (a == "--warmup-steps")
      o.warmup_steps = std::stoi(value());
    else if (a == "--epoch-budget")
      o.budget = std::stod(value());
    else if (a == "--no-validate")
      o.validate = false;
    else if (a == "--no-split")
      o.split = false;
    else if (a == "--peak-only")
      o.peak_only = true;
    else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown argument '" + a + "'\n" + kUsage);
    }
  }
  for (const std::string& m : o.models)
    if (m != "bn-mlp" && m != "deep-mlp")
      throw std::invalid_argument("unknown model '" + m + "' (bn-mlp or deep-mlp)");
  if (o.epochs < 1 || o.warmup < 0 || o.infer_passes < 1)
    throw std::invalid_argument("--epochs and --infer-passes must be >= 1, --warmup >= 0");
  return o;
}

// A model and its leaf modules in execution order (both references are plain chains, so
// running the leaves one by one is exactly model.forward / model.backward).
struct Model {
  std::unique_ptr<Module<float>> net;
  std::vector<Module<float>*> chain;
};

Model make_model(const std::string& name) {
  manual_seed(1);
  Model m;
  if (name == "bn-mlp") {
    auto net = std::make_unique<mnist::Net<float>>();
    m.chain = {&net->layer1[0], &net->layer1[1], &net->relu1,    &net->layer2[0],
               &net->layer2[1], &net->relu2,     &net->layer3[0]};
    m.net = std::move(net);
  } else {
    auto net = std::make_unique<Sequential<float>>(mnist::deep_mlp<float>());
    for (Index i = 0; i < net->size(); ++i) m.chain.push_back(&(*net)[i]);
    m.net = std::move(net);
  }
  m.net->set_input_requires_grad(false);  // the data needs no gradient (PyTorch skips it too)
  return m;
}

// The optimizers of the reference programs: reference 1 SGD(lr 0.01, momentum 0.5),
// reference 2 plain SGD(lr 0.01). The lr does not change the speed.
std::unique_ptr<SGD<float>> make_optimizer(const std::string& name, Model& m) {
  return std::make_unique<SGD<float>>(m.net->parameters(), 0.01, name == "bn-mlp" ? 0.5 : 0.0);
}

std::vector<Linear<float>*> linears(const Model& m) {
  std::vector<Linear<float>*> out;
  for (Module<float>* l : m.chain)
    if (auto* lin = dynamic_cast<Linear<float>*>(l)) out.push_back(lin);
  return out;
}

// Flops of the products one training step of n samples runs, as the library runs them:
// per Linear, y = x W^T, dW += dy^T x and dx = dy W, 2 n in out each, except the first
// layer's dx when the library can skip it. `useful` always leaves that one out: nothing
// reads it (PyTorch does not compute it).
struct Flops {
  double train_per_sample = 0, useful_per_sample = 0, infer_per_sample = 0;
};
Flops count_flops(const Model& m) {
  Flops f;
  bool first = true;
  for (const Linear<float>* l : linears(m)) {
    const double mac =
        static_cast<double>(l->in_features()) * static_cast<double>(l->out_features());
    f.infer_per_sample += 2 * mac;
    f.useful_per_sample += first ? 4 * mac : 6 * mac;
    f.train_per_sample += first ? 4 * mac : 6 * mac;
    first = false;
  }
  return f;
}

// ---- 1. validation -----------------------------------------------------------------------

struct Check {
  std::string what;
  double error;
};

// One step on a fresh model against reference_step; throws if any quantity is off.
void validate(const std::string& name, const MnistDataset<float>& data, Index batch_size,
              int threads) {
  Model m = make_model(name);
  std::unique_ptr<SGD<float>> opt = make_optimizer(name, m);
  DataLoader<float> loader(data, batch_size, /*shuffle=*/true, /*seed=*/7);
  const Batch<float>& batch = loader.batch(0);
  std::vector<bench::RefLayer> ref = bench::reference_layers(m.chain);
  const bench::RefStep want = bench::reference_step(ref, batch.images.data(), batch.size(),
                                                    batch.images.size(1), batch.labels.data());

  // The library's step, exactly as timed.
  CrossEntropyLoss<float> criterion;
  opt->zero_grad(/*set_to_none=*/true);
  const Tensor<float>& out = m.net->forward(batch.images);
  const Tensor<float> logits = out;
  const float loss = criterion.forward(out, batch.labels);
  m.net->backward(criterion.backward());

  std::vector<Check> checks;
  checks.push_back({"loss", std::abs(static_cast<double>(loss) - want.loss) / std::abs(want.loss)});
  checks.push_back({"logits", bench::scaled_error(logits.data(), want.logits)});
  // Each parameter with its gradient and the reference gradient.
  struct Param {
    Tensor<float>* value;
    Tensor<float>* grad;
    const std::vector<double>* want;
  };
  std::vector<Param> params;
  for (std::size_t i = 0; i < m.chain.size(); ++i) {
    if (auto* l = dynamic_cast<Linear<float>*>(m.chain[i])) {
      params.push_back({&l->weight, &l->grad_weight, &ref[i].grad_w});
      params.push_back({&l->bias, &l->grad_bias, &ref[i].grad_b});
    } else if (auto* bn = dynamic_cast<BatchNorm1d<float>*>(m.chain[i])) {
      params.push_back({&bn->weight, &bn->grad_weight, &ref[i].grad_w});
      params.push_back({&bn->bias, &bn->grad_bias, &ref[i].grad_b});
    }
  }
  double grad_scale = 0;  // the largest reference gradient, the floor of every tensor's scale
  for (const Param& p : params)
    for (double g : *p.want) grad_scale = std::max(grad_scale, std::abs(g));
  double worst_grad = 0;
  for (const Param& p : params)
    worst_grad =
        std::max(worst_grad, bench::scaled_error(p.grad->data(), *p.want, 1e-2 * grad_scale));
  checks.push_back({"gradients (" + std::to_string(params.size()) + " tensors)", worst_grad});

  // The SGD update: on the first step the momentum buffer is the gradient, so the step
  // taken is -lr * g. Compared as steps (new - old), not as weights, so the check has teeth.
  std::vector<Tensor<float>> before;
  for (const Param& p : params) before.push_back(*p.value);
  opt->step();
  double worst_update = 0;
  for (std::size_t k = 0; k < params.size(); ++k) {
    const std::vector<double>& g = *params[k].want;
    std::vector<double> want_step(g.size());
    std::vector<float> taken(g.size());
    for (std::size_t j = 0; j < g.size(); ++j) {
      const Index at = static_cast<Index>(j);
      want_step[j] = -opt->lr() * g[j];
      taken[j] = (*params[k].value)[at] - before[k][at];
    }
    worst_update = std::max(
        worst_update, bench::scaled_error(taken.data(), want_step, 1e-2 * opt->lr() * grad_scale));
  }
  checks.push_back({"SGD update", worst_update});

  // The chain the split times is model.forward, bit for bit (fresh model: same weights).
  Model c = make_model(name);
  const Tensor<float>* y = &batch.images;
  for (Module<float>* l : c.chain) y = &l->forward(*y);
  const bool chain_same = *y == logits;

  // float against double: products of up to 784 terms and BatchNorm's 1/std leave ~1e-6
  // relative error; 1e-4 is 100x that, and far below any real bug (a wrong term is O(1)).
  // The SGD step is lr * g rounded to float, then subtracted from a float weight:
  // its error is ~1e-7 / lr relative, hence a looser bound.
  bool ok = chain_same;
  std::printf("  validate %s b%ld t%d against the double reference:", name.c_str(),
              static_cast<long>(batch_size), threads);
  for (const Check& ch : checks) {
    const double tol = ch.what == "SGD update" ? 2e-3 : 1e-4;
    ok = ok && ch.error <= tol;
    std::printf(" %s %.1e%s;", ch.what.c_str(), ch.error, ch.error <= tol ? "" : " (FAIL)");
  }
  std::printf(" layer chain == model.forward: %s\n", chain_same ? "yes" : "NO (FAIL)");
  if (!ok) throw std::runtime_error("validation failed for " + name + ": numbers not timed");
}

// ---- 2.-4. timing --------------------------------------------------------------------------

struct EpochTime {
  double wall, cpu, mean_loss;
  bool partial;
};

// One epoch; with a budget it stops after `budget` seconds (or after `max_steps` steps)
// and scales the times to the whole epoch.
EpochTime train_epoch(Model& m, SGD<float>& opt, CrossEntropyLoss<float>& criterion,
                      DataLoader<float>& loader, std::uint64_t epoch, double budget = 0,
                      Index max_steps = -1) {
  m.net->train();
  const double w0 = bench::wall(), c0 = bench::process_cpu();
  loader.set_epoch(epoch);
  double loss_sum = 0;
  const Index steps =
      max_steps < 0 ? loader.num_batches() : std::min(max_steps, loader.num_batches());
  Index b = 0;
  for (; b < steps; ++b) {
    if (budget > 0 && b > 0 && bench::wall() - w0 > budget) break;
    const Batch<float>& batch = loader.batch(b);
    opt.zero_grad(/*set_to_none=*/true);
    const Tensor<float>& out = m.net->forward(batch.images);
    loss_sum += criterion.forward(out, batch.labels);
    m.net->backward(criterion.backward());
    opt.step();
  }
  const double scale = static_cast<double>(loader.num_batches()) / static_cast<double>(b);
  return {(bench::wall() - w0) * scale, (bench::process_cpu() - c0) * scale,
          loss_sum / static_cast<double>(b), b < loader.num_batches()};
}

double infer_pass(Model& m, DataLoader<float>& loader, double* checksum, double budget) {
  m.net->eval();
  NoGradGuard no_grad;  // as PyTorch's baseline, under torch.inference_mode()
  const double w0 = bench::wall();
  double sum = 0;
  Index b = 0;
  for (; b < loader.num_batches(); ++b) {
    if (budget > 0 && b > 0 && bench::wall() - w0 > budget) break;
    const Batch<float>& batch = loader.batch(b);
    const Tensor<float>& out = m.net->forward(batch.images);
    sum += static_cast<double>(out[0]);
  }
  const double w =
      (bench::wall() - w0) * static_cast<double>(loader.num_batches()) / static_cast<double>(b);
  m.net->train();
  *checksum += sum;
  return w;
}

// Categories of the step-time split, in microseconds per step.
struct Split {
  std::map<std::string, double> us;  // per category
  double step_us = 0;                // instrumented step total
};

// One epoch with a clock around every piece, then the GEMMs re-timed alone. The clock is
// the process CPU time, so that other processes sharing the cores do not land in whichever
// piece was running when they were scheduled (with 2 threads it counts both threads' CPU,
// spinning included).
Split split_step(Model& m, SGD<float>& opt, CrossEntropyLoss<float>& criterion,
                 DataLoader<float>& loader, std::uint64_t epoch, double budget) {
  Split s;
  std::map<std::string, double>& t = s.us;
  for (const char* k : {"linear", "batchnorm", "relu", "loss", "data", "optimizer"}) t[k] = 0;
  const auto category = [](Module<float>* l) -> const char* {
    if (dynamic_cast<Linear<float>*>(l)) return "linear";
    if (dynamic_cast<BatchNorm1d<float>*>(l)) return "batchnorm";
    return "relu";
  };
  m.net->train();
  loader.set_epoch(epoch);
  const double e0 = bench::process_cpu(), w0 = bench::wall();
  Index b = 0;
  for (; b < loader.num_batches(); ++b) {
    if (budget > 0 && b > 0 && bench::wall() - w0 > budget) break;
    double t0 = bench::process_cpu();
    const Batch<float>& batch = loader.batch(b);
    double t1 = bench::process_cpu();
    t["data"] += t1 - t0;
    opt.zero_grad(/*set_to_none=*/true);
    t0 = bench::process_cpu();
    t["optimizer"] += t0 - t1;
    const Tensor<float>* y = &batch.images;
    for (Module<float>* l : m.chain) {
      y = &l->forward(*y);
      t1 = bench::process_cpu();
      t[category(l)] += t1 - t0;
      t0 = t1;
    }
    criterion.forward(*y, batch.labels);
    const Tensor<float>* g = &criterion.backward();
    t1 = bench::process_cpu();
    t["loss"] += t1 - t0;
    t0 = t1;
    for (auto it = m.chain.rbegin(); it != m.chain.rend(); ++it) {
      g = &(*it)->backward(*g);
      t1 = bench::process_cpu();
      t[category(*it)] += t1 - t0;
      t0 = t1;
    }
    opt.step();
    t["optimizer"] += bench::process_cpu() - t0;
  }
  const double steps = static_cast<double>(b);
  s.step_us = (bench::process_cpu() - e0) / steps * 1e6;
  for (auto& [k, v] : t) v = v / steps * 1e6;

  // The three products of each Linear, alone, at the full batch, with the library's own
  // expressions and storage: the GEMM share of "linear".
  const Index n = loader.batch_size();
  double gemm_us = 0;
  bool first = true;
  for (const Linear<float>* l : linears(m)) {
    const Index in = l->in_features(), out = l->out_features();
    Tensor<float> x = Tensor<float>::full({n, in}, 0.5f), w = l->weight, y({n, out}),
                  dy = Tensor<float>::full({n, out}, 0.25f), dw({out, in}), dx({n, in});
    const auto time_us = [](auto&& f) {
      std::vector<double> v;
      for (int r = 0; r < 5; ++r) v.push_back(bench::mean_call_us(f, 0.01, bench::process_cpu));
      return bench::stats(v).median;
    };
    // Linear's three products, whole, on one thread (as linear.hpp calls them).
    gemm_us += time_us([&] {
      detail::gemm<float>(n, out, in, {x.data(), in, true}, {w.data(), in, false}, y.data(), out);
    });
    gemm_us += time_us([&] {  // dW written: the timed loop clears with zero_grad(true)
      detail::gemm<float>(out, in, n, {dy.data(), out, false}, {x.data(), in, true}, dw.data(), in);
    });
    if (!first)  // the first layer skips dL/dx
      gemm_us += time_us([&] {
        detail::gemm<float>(n, in, out, {dy.data(), out, true}, {w.data(), in, true}, dx.data(),
                            in);
      });
    first = false;
  }
  // The last, smaller batch makes the mean step a little cheaper than a full one.
  const double full_share =
      static_cast<double>(loader.num_samples()) / static_cast<double>(loader.num_batches() * n);
  t["gemm"] = std::min(gemm_us * full_share, t["linear"]);
  t["linear other"] = t["linear"] - t["gemm"];
  t.erase("linear");
  return s;
}

struct Result {
  std::string model;
  Index batch;
  int threads;
  bench::Stats epoch, cpu, infer;
  std::vector<double> epoch_walls;  // every timed epoch, in order
  int partial = 0;                  // epochs cut by the budget and extrapolated
  double train_sps, infer_sps, gflops, useful_gflops, peak_pct, rss_mib, final_loss;
  double peak_now_pct;     // median over epochs: the epoch's GFLOP/s / peak_now(threads) after it
  double peak_now_gflops;  // median of those peaks
  std::vector<double> cross_ns;    // two threads or more: cross_core_ns() after each epoch
  detail::ThreadPool::Stats pool;  // over the timed epochs
  double cpu_gflops;               // flops as run / process CPU time: the rate while running
  Split split;
};

Result run_config(const Options& o, const std::string& name, const MnistDataset<float>& data,
                  Index batch_size, int threads, const bench::Peak& peak) {
  set_num_threads(threads);
  if (o.validate) validate(name, data, batch_size, threads);

  Model m = make_model(name);
  std::unique_ptr<SGD<float>> opt = make_optimizer(name, m);
  CrossEntropyLoss<float> criterion;
  DataLoader<float> loader(data, batch_size, /*shuffle=*/true, /*seed=*/1);
  std::vector<double> wall, cpu, peak_now, cross_ns;
  double loss = 0;
  int partial = 0;
  if (o.warmup_steps > 0)  // warm caches and the allocator before the first timed epoch
    train_epoch(m, *opt, criterion, loader, 1000, o.budget, o.warmup_steps);
  for (int e = 0; e < o.warmup + o.epochs; ++e) {
    if (e == o.warmup) detail::thread_pool().reset_stats();
    const EpochTime t =
        train_epoch(m, *opt, criterion, loader, static_cast<std::uint64_t>(e), o.budget);
    if (!std::isfinite(t.mean_loss)) throw std::runtime_error(name + ": the loss diverged");
    loss = t.mean_loss;
    if (e >= o.warmup) {
      wall.push_back(t.wall);
      cpu.push_back(t.cpu);
      partial += t.partial;
      peak_now.push_back(bench::peak_now(threads));
      if (threads > 1) cross_ns.push_back(bench::cross_core_ns());
    }
  }
  const detail::ThreadPool::Stats pool = detail::thread_pool().stats();
  Result r{};
  r.partial = partial;
  r.model = name;
  r.batch = batch_size;
  r.threads = threads;
  r.final_loss = loss;
  r.epoch = bench::stats(wall);
  r.epoch_walls = wall;
  r.cpu = bench::stats(cpu);
  const double samples = static_cast<double>(loader.num_samples());
  r.train_sps = samples / r.epoch.median;
  const Flops f = count_flops(m);
  const auto gflops_in = [&](double seconds) {  // the products of an epoch in `seconds`
    return f.train_per_sample * samples / seconds / 1e9;
  };
  r.gflops = gflops_in(r.epoch.median);
  r.useful_gflops = f.useful_per_sample * samples / r.epoch.median / 1e9;
  r.peak_pct = 100 * r.gflops / (peak.per_core * threads);
  std::vector<double> pct_now;
  for (std::size_t e = 0; e < wall.size(); ++e)
    pct_now.push_back(100 * gflops_in(wall[e]) / peak_now[e]);
  r.peak_now_pct = bench::stats(pct_now).median;
  r.peak_now_gflops = bench::stats(peak_now).median;
  r.cross_ns = cross_ns;
  r.pool = pool;
  r.cpu_gflops = gflops_in(r.cpu.median);

  DataLoader<float> infer_loader(data, batch_size);
  std::vector<double> iw;
  double checksum = 0;
  infer_pass(m, infer_loader, &checksum, o.budget > 0 ? o.budget / 4 : 0);  // warm-up
  for (int p = 0; p < o.infer_passes; ++p)
    iw.push_back(infer_pass(m, infer_loader, &checksum, o.budget));
  r.infer = bench::stats(iw);
  r.infer_sps = static_cast<double>(infer_loader.num_samples()) / r.infer.median;
  if (!std::isfinite(checksum)) throw std::runtime_error(name + ": inference is not finite");

  if (o.split)
    r.split = split_step(m, *opt, criterion, loader,
                         static_cast<std::uint64_t>(o.warmup + o.epochs), o.budget);
  r.rss_mib = bench::max_rss_mib();
  return r;
}

void print_result(const Result& r, const bench::Peak& peak) {
  const double cross_median = bench::stats(r.cross_ns).median;  // 0 with one thread
  std::printf(
      "  train  %.3f s/epoch (median of %zu; min %.3f, max %.3f)  %.0f samples/s  "
      "[process CPU %.3f s/epoch]  mean loss of the last epoch %.4f%s\n",
      r.epoch.median, r.epoch.n, r.epoch.min, r.epoch.max, r.train_sps, r.cpu.median, r.final_loss,
      r.partial ? "  (some epochs cut by --epoch-budget, extrapolated)" : "");
  std::printf("  infer  %.0f samples/s (median of %zu passes over 60k; min %.4f s, max %.4f s)\n",
              r.infer_sps, r.infer.n, r.infer.min, r.infer.max);
  std::printf(
      "  flops  %.1f GFLOP/s in the products as run (%.0f%% of %d x %.0f peak); "
      "%.1f GFLOP/s counting only the needed ones; %.1f GFLOP/s per CPU-second "
      "(%.0f%% of one core's peak)\n",
      r.gflops, r.peak_pct, r.threads, peak.per_core, r.useful_gflops, r.cpu_gflops,
      100 * r.cpu_gflops / peak.per_core);
  std::printf(
      "         %.0f%% of the peak of %d thread(s) timed after each epoch (median over the "
      "epochs, whose peaks had a median of %.0f GFLOP/s: a shared host's speed varies)\n",
      r.peak_now_pct, r.threads, r.peak_now_gflops);
  if (r.threads > 1) {
    std::printf(
        "  cores  a cache line to the other core and back in %.0f ns (median over the epochs; "
        "the two threads' data crosses at that latency)\n",
        cross_median);
    const double shared = static_cast<double>(std::max<std::int64_t>(r.pool.shared, 1));
    std::printf(
        "  pool   %ld jobs (products, SGD updates) shared between the threads, %ld of them "
        "waited for a late helper (%.1f%%), %ld for a stalled one (late by over 1 ms: a Backoff "
        "follows the second); %ld more ran on one thread during a backoff or alone; "
        "%ld of the 20 ms windows found the threads preempted 3+ times, and sent the caller "
        "alone for %.0f ms in all (jobs then not split are not counted above)\n",
        static_cast<long>(r.pool.shared), static_cast<long>(r.pool.late),
        100 * static_cast<double>(r.pool.late) / shared, static_cast<long>(r.pool.stalled),
        static_cast<long>(r.pool.alone), static_cast<long>(r.pool.preempted),
        1e-3 * static_cast<double>(r.pool.alone_us));
  }
  if (!r.split.us.empty()) {
    double total = 0;
    for (const auto& kv : r.split.us) total += kv.second;
    std::printf("  split  (CPU us per step of %.1f us instrumented):", r.split.step_us);
    for (const char* k :
         {"gemm", "linear other", "batchnorm", "relu", "loss", "data", "optimizer"}) {
      const auto it = r.split.us.find(k);
      if (it == r.split.us.end()) continue;
      std::printf(" %s %.1f (%.0f%%);", k, it->second, 100 * it->second / total);
    }
    std::printf("\n");
  }
  std::printf("  memory max RSS %.0f MiB (process high-water mark so far)\n", r.rss_mib);
  std::printf(
      "RESULT impl=ours model=%s batch=%ld threads=%d epoch_s=%.4f epoch_min=%.4f "
      "epoch_max=%.4f epochs=%zu train_sps=%.0f infer_sps=%.0f gflops=%.1f "
      "peak_pct=%.1f peak_now_pct=%.1f peak_now=%.1f cpu_gflops=%.1f rss_mib=%.0f cpu_s=%.4f "
      "partial=%d "
      "pool_shared=%ld pool_late=%ld pool_stalled=%ld pool_alone=%ld pool_preempted=%ld "
      "pool_alone_ms=%.0f cross_core_ns=%.0f",
      r.model.c_str(), static_cast<long>(r.batch), r.threads, r.epoch.median, r.epoch.min,
      r.epoch.max, r.epoch.n, r.train_sps, r.infer_sps, r.gflops, r.peak_pct, r.peak_now_pct,
      r.peak_now_gflops, r.cpu_gflops, r.rss_mib, r.cpu.median, r.partial,
      static_cast<long>(r.pool.shared), static_cast<long>(r.pool.late),
      static_cast<long>(r.pool.stalled), static_cast<long>(r.pool.alone),
      static_cast<long>(r.pool.preempted), 1e-3 * static_cast<double>(r.pool.alone_us),
      cross_median);
  std::printf(" epoch_list=");
  for (std::size_t i = 0; i < r.epoch_walls.size(); ++i)
    std::printf("%s%.4f", i ? "," : "", r.epoch_walls[i]);
  if (!r.cross_ns.empty()) std::printf(" cross_list=");
  for (std::size_t i = 0; i < r.cross_ns.size(); ++i)
    std::printf("%s%.0f", i ? "," : "", r.cross_ns[i]);
  for (const auto& [k, v] : r.split.us) {
    std::string key = k;
    for (char& c : key)
      if (c == ' ') c = '_';
    std::printf(" us_%s=%.1f", key.c_str(), v);
  }
  std::printf("\n");
  std::fflush(stdout);
}

int run(const Options& o) {
  std::printf("bench_train: %s\n", bench::cpu_model().c_str());
  std::printf("  build: %s; %s\n", bench::compiler().c_str(), bench::eigen_flags().c_str());
  std::printf(
      "  threads: %s, products of >= %.0f MFLOP cut in one part "
      "per thread (through Eigen's kernel: from %.0f MFLOP, tiles of at most %d rows, the "
      "columns cut in %d blocks); "
      "first layer's input gradient skipped (set_input_requires_grad(false))\n",
#if defined(BACKPROP_BENCH_OPENMP) && defined(_OPENMP)
      "OpenMP's threads in place of the pool's helpers (bench_train_omp)",
#else
      "backprop's pool (parallel.hpp)",
#endif
      detail::kParallelMinFlops / 1e6, detail::kEigenParallelMinFlops / 1e6,
      static_cast<int>(detail::kEigenTileRows), static_cast<int>(detail::kEigenColTiles));
  const bench::Peak peak = bench::measure_peak();
  std::printf(
      "  FMA peak (%s): %.1f GFLOP/s per core by thread CPU time, %.1f by wall time; "
      "%.1f GFLOP/s with two threads (wall)\n",
      bench::fma_isa(), peak.per_core, peak.per_core_wall, peak.two_cores_wall);
  const double cross_ns = bench::cross_core_ns();
  std::printf("  cores: a cache line to the other core and back in %.0f ns\n", cross_ns);
  std::printf(
      "RESULT impl=peak per_core=%.1f per_core_wall=%.1f two_cores_wall=%.1f "
      "cross_core_ns=%.0f\n",
      peak.per_core, peak.per_core_wall, peak.two_cores_wall, cross_ns);
  if (o.peak_only) return 0;

  const MnistDataset<float> train(o.data, /*train=*/true);
  std::printf("  data: %s (%ld samples); max RSS after loading %.0f MiB\n",
              train.images_path().c_str(), static_cast<long>(train.size()), bench::max_rss_mib());
  std::vector<Result> results;
  for (const std::string& name : o.models)
    for (Index b : o.batches)
      for (int t : o.threads) {
        std::printf("%s batch %ld threads %d\n", name.c_str(), static_cast<long>(b), t);
        std::fflush(stdout);
        results.push_back(run_config(o, name, train, b, t, peak));
        print_result(results.back(), peak);
      }

  std::printf(
      "\n| model | batch | threads | s/epoch (median [min, max]) | train samples/s | "
      "infer samples/s | GFLOP/s | %% of peak | %% of the peak after each epoch |\n"
      "|---|---|---|---|---|---|---|---|---|\n");
  for (const Result& r : results)
    std::printf("| %s | %ld | %d | %.3f [%.3f, %.3f] | %.0f | %.0f | %.0f | %.0f | %.0f |\n",
                r.model.c_str(), static_cast<long>(r.batch), r.threads, r.epoch.median, r.epoch.min,
                r.epoch.max, r.train_sps, r.infer_sps, r.gflops, r.peak_pct, r.peak_now_pct);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: error: %s\n", e.what());
    return 1;
  }
}
