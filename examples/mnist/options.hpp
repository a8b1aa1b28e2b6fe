// SPDX-License-Identifier: MIT
// Command-line options of the MNIST example: the two presets and every override.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mnist {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Two threads when there are two cores or more: the products are cut into one part per
// thread (detail/gemm.hpp), so more threads help too, but only two were measured
// (docs/benchmarks.md#threads), and results do not depend on the count.
inline int default_threads() { return std::thread::hardware_concurrency() >= 2 ? 2 : 1; }

struct Options {
  std::string preset = "bn-mlp";
  std::int64_t epochs = 20, batch_size = 64, test_batch_size = 128;
  std::string optimizer = "sgd";  // sgd, adam or adamw
  double lr = 0.01, momentum = 0.5;
  double weight_decay = -1;  // -1: the optimizer's PyTorch default (0; AdamW 1e-2)
  double dropout = 0;        // Dropout(p) after each hidden ReLU; 0: none, as the references
  std::int64_t lr_step = 5;  // 0: constant lr
  double lr_gamma = 0.1;
  std::uint64_t seed = 0;
  int threads = 0;  // 0: automatic, default_threads() (1 per rank with --distributed)
  bool shuffle = true;
  bool distributed = false;     // data-parallel over MPI (distributed.hpp)
  std::int64_t max_steps = -1;  // stop after this many training steps (-1: no limit)
  std::int64_t classes = 10;    // the last layer's outputs; labels in [0, classes)
  std::string data_dir = "data/mnist", out, load, save, resume;
  std::vector<std::string> command;  // argv as given, for the "to continue" hint
};

inline const char* usage_text() {
  return R"(usage: mnist [options]

Trains one of the two reference MLPs on MNIST (or any dataset in its IDX format) and
writes metrics and pictures to --out.

presets:
  --preset bn-mlp     reference 1 (default): 784-300-100-10, Linear+BatchNorm1d+ReLU;
                      SGD lr 0.01 momentum 0.5, lr x0.1 at the start of epochs 0, 5, 10, 15;
                      20 epochs, batch 64 shuffled, test batch 128
  --preset deep-mlp   reference 2: 784-600-400-200-100-10 with ReLU; plain SGD lr 0.01;
                      100 epochs, batch 64; prints the total training time

options (override the preset):
  --epochs N            epochs to train
  --batch-size N        training batch size
  --test-batch-size N   test batch size
  --optimizer NAME      sgd (default, the references'), adam or adamw (torch.optim.Adam,
                        AdamW: betas 0.9 0.999, eps 1e-8, PyTorch's defaults)
  --lr X                learning rate (default 0.01 for sgd, 1e-3 for adam and adamw)
  --momentum X          SGD momentum (0: plain SGD); only with --optimizer sgd
  --weight-decay X      weight decay (default PyTorch's: 0 for sgd and adam, 1e-2 for
                        adamw, which decouples it)
  --dropout P           Dropout(P) after each hidden ReLU, 0 <= P < 1 (default 0: none).
                        This departs from the reference models; for deep-mlp it shifts
                        the state_dict indices as in PyTorch (0, 3, 6, 9, 12 .weight)
  --lr-step N           multiply lr by --lr-gamma every N epochs (bn-mlp also at epoch 0,
                        as reference 1), whatever the optimizer; 0 keeps lr constant
  --lr-gamma X          the factor of --lr-step
  --seed N              seed of the initial weights and the shuffling
  --threads N           threads for the large matrix products (default: 2 on a machine
                        with 2 cores or more, 1 per rank with --distributed; the results
                        are bitwise the same for any N)
  --no-shuffle          serve the training set in file order
  --max-steps N         stop after N training steps (for quick checks); the checkpoint
                        records where, and --resume continues from that very step
  --data-dir DIR        the IDX files (default data/mnist; read only, never modified)
  --classes N           labels run from 0 to N-1: the model's outputs (default 10;
                        EMNIST letters, labelled 1 to 26: 27)
  --out DIR             where metrics.csv, losses.csv and the pictures go
                        (default runs/<preset>; with --resume, the checkpoint's directory)
  --load PATH           load weights (a state_dict) before training, as reference 2
  --save PATH           write a checkpoint there after every epoch and where the run
                        stops (default <out>/checkpoint.safetensors, or the --resume
                        file; "none" to disable). The first save moves an earlier
                        run's checkpoint there aside: x.safetensors to
                        x.previous.safetensors
  --resume PATH         continue a run from its checkpoint, mid-epoch included: weights,
                        optimizer, position, random state; the result is bit for bit
                        that of an uninterrupted run. Ctrl-C stops a run resumably
  --distributed         data-parallel training over MPI: mpirun -np N mnist --distributed;
                        each rank takes --batch-size, the global batch is N times that
                        (docs/distributed.md; needs a build with MPI)
  -h, --help            this text
Values go after the flag or after '=': --epochs 5, --epochs=5.
)";
}

namespace detail {

inline std::int64_t parse_int(const std::string& flag, const std::string& text, std::int64_t min) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < min)
    throw UsageError(flag + " expects an integer >= " + std::to_string(min) + ", got '" + text +
                     "'");
  return v;
}

// min is 0 (">= 0") or the smallest positive double ("> 0").
inline double parse_double(const std::string& flag, const std::string& text, double min) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v) || v < min)
    throw UsageError(flag + " expects a number " + (min > 0 ? "> 0" : ">= 0") + ", got '" + text +
                     "'");
  return v;
}

// 0 <= p < 1: p = 1 would zero every hidden unit, so nothing could be learnt.
inline double parse_probability(const std::string& flag, const std::string& text) {
  const double p = parse_double(flag, text, 0);
  if (!(p < 1)) throw UsageError(flag + " expects a probability 0 <= P < 1, got '" + text + "'");
  return p;
}

}  // namespace detail

/// Parses argv; throws UsageError with a one-line message. Returns false for --help.
/// A value follows its flag as the next argument or after '=' (--epochs 5, --epochs=5).
inline bool parse_options(int argc, char** argv, Options& o) {
  o.command.assign(argv, argv + argc);
  // "--flag=value" becomes "--flag" "value"; flags without a value must not have one.
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const std::size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      const std::string flag = a.substr(0, eq);
      if (flag == "--no-shuffle" || flag == "--distributed" || flag == "--help")
        throw UsageError(flag + " takes no value, got '" + a + "'");
      args.push_back(flag);
      args.push_back(a.substr(eq + 1));
    } else {
      args.push_back(a);
    }
  }
  // The preset sets the defaults first, whatever its position, so flags override it.
  for (std::size_t i = 0; i < args.size(); ++i)
    if (args[i] == "--preset") {
      if (i + 1 >= args.size()) throw UsageError("--preset expects bn-mlp or deep-mlp");
      o.preset = args[i + 1];
    }
  if (o.preset == "deep-mlp") {
    o.epochs = 100, o.lr = 0.01, o.momentum = 0, o.lr_step = 0;
  } else if (o.preset != "bn-mlp") {
    throw UsageError("--preset expects bn-mlp or deep-mlp, got '" + o.preset + "'");
  }
  bool out_given = false, save_given = false, lr_given = false, momentum_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "-h" || flag == "--help") return false;
    if (flag == "--no-shuffle") {
      o.shuffle = false;
      continue;
    }
    if (flag == "--distributed") {
      o.distributed = true;
      continue;
    }
    if (flag.rfind("-", 0) != 0) throw UsageError("unexpected argument '" + flag + "'");
    if (flag.rfind("--", 0) != 0) throw UsageError("unknown option '" + flag + "' (see --help)");
    if (i + 1 >= args.size()) throw UsageError(flag + " expects a value");
    const std::string& v = args[++i];
    if (flag == "--preset")
      continue;
    else if (flag == "--epochs")
      o.epochs = detail::parse_int(flag, v, 0);
    else if (flag == "--batch-size")
      o.batch_size = detail::parse_int(flag, v, 2);
    else if (flag == "--test-batch-size")
      o.test_batch_size = detail::parse_int(flag, v, 1);
    else if (flag == "--optimizer")
      o.optimizer = v;
    else if (flag == "--lr")
      o.lr = detail::parse_double(flag, v, 0), lr_given = true;
    else if (flag == "--momentum")
      o.momentum = detail::parse_double(flag, v, 0), momentum_given = true;
    else if (flag == "--weight-decay")
      o.weight_decay = detail::parse_double(flag, v, 0);
    else if (flag == "--dropout")
      o.dropout = detail::parse_probability(flag, v);
    else if (flag == "--lr-step")
      o.lr_step = detail::parse_int(flag, v, 0);
    else if (flag == "--lr-gamma")
      o.lr_gamma = detail::parse_double(flag, v, std::numeric_limits<double>::min());
    else if (flag == "--seed")
      o.seed = static_cast<std::uint64_t>(detail::parse_int(flag, v, 0));
    else if (flag == "--threads")
      o.threads = static_cast<int>(detail::parse_int(flag, v, 1));
    else if (flag == "--max-steps")
      o.max_steps = detail::parse_int(flag, v, 0);
    else if (flag == "--data-dir")
      o.data_dir = v;
    else if (flag == "--classes")
      o.classes = detail::parse_int(flag, v, 1);
    else if (flag == "--out")
      o.out = v, out_given = true;
    else if (flag == "--load")
      o.load = v;
    else if (flag == "--save")
      o.save = v, save_given = true;
    else if (flag == "--resume")
      o.resume = v;
    else
      throw UsageError("unknown option '" + flag + "' (see --help)");
    if (v.empty()) throw UsageError(flag + " expects a value, got ''");
  }
  if (o.threads > 1024) throw UsageError("--threads expects at most 1024");
  if (o.classes > 256) throw UsageError("--classes expects at most 256 (labels are bytes)");
  if (o.optimizer != "sgd" && o.optimizer != "adam" && o.optimizer != "adamw")
    throw UsageError("--optimizer expects sgd, adam or adamw, got '" + o.optimizer + "'");
  if (o.optimizer != "sgd") {
    if (momentum_given)
      throw UsageError("--momentum is SGD's; --optimizer " + o.optimizer +
                       " has betas 0.9 0.999 instead: drop --momentum or use --optimizer sgd");
    o.momentum = 0;
    if (!lr_given) o.lr = 1e-3;  // torch.optim.Adam's and AdamW's default lr
  }
  if (o.weight_decay < 0) o.weight_decay = o.optimizer == "adamw" ? 1e-2 : 0;
  if (!o.load.empty() && !o.resume.empty())
    throw UsageError("--load and --resume exclude each other (--resume restores the weights)");
  // A resumed run continues where it was: its outputs beside its checkpoint, which it keeps
  // updating, unless --out or --save say otherwise.
  if (!out_given) {
    const std::size_t slash = o.resume.find_last_of('/');
    o.out = o.resume.empty()             ? "runs/" + o.preset
            : slash == std::string::npos ? "."
                                         : o.resume.substr(0, std::max<std::size_t>(slash, 1));
  }
  if (!save_given) o.save = o.resume.empty() ? o.out + "/checkpoint.safetensors" : o.resume;
  if (o.save == "none") o.save.clear();
  return true;
}

}  // namespace mnist
