// SPDX-License-Identifier: MIT
// What the training loop of main.cpp stands on: the process it runs in (World: alone, or one
// rank of an MPI job, distributed.hpp), the data, model, optimizer and schedule built from the
// options with --load / --resume applied (Session), the test pass, and Ctrl-C.
#pragma once

#include <unistd.h>  // access

#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/mnist.hpp>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "history.hpp"
#include "models.hpp"
#include "options.hpp"
#include "progress.hpp"

namespace mnist {

using backprop::Index;
using backprop::Module;
using backprop::Tensor;

/// The training batches of one epoch: io::DataLoader, or this rank's shard under MPI.
struct TrainLoader {
  virtual ~TrainLoader() = default;
  virtual void set_epoch(std::uint64_t epoch) = 0;
  virtual Index num_batches() const = 0;
  virtual const backprop::io::Batch<float>& batch(Index b) = 0;
  virtual Index num_samples() const = 0;  // per epoch (this rank's, under MPI)
};

template <typename Loader>
struct TrainLoaderOf : TrainLoader {
  template <typename... Args>
  explicit TrainLoaderOf(Args&&... args) : loader(std::forward<Args>(args)...) {}
  void set_epoch(std::uint64_t epoch) override { loader.set_epoch(epoch); }
  Index num_batches() const override { return loader.num_batches(); }
  const backprop::io::Batch<float>& batch(Index b) override { return loader.batch(b); }
  Index num_samples() const override { return loader.num_samples(); }
  Loader loader;
};

/// The process a run happens in. This one is a whole run by itself; distributed.hpp's
/// MpiWorld is one rank of a data-parallel job and overrides what that changes.
class World {
 public:
  virtual ~World() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  bool root() const { return rank() == 0; }
  virtual int threads(const Options& o) const {
    return o.threads > 0 ? o.threads : default_threads();
  }
  /// The model as trained: itself (MPI: wrapped in DistributedDataParallel).
  virtual Module<float>& parallel(Module<float>& model) { return model; }
  virtual std::unique_ptr<TrainLoader> train_loader(const backprop::io::MnistDataset<float>& train,
                                                    const Options& o) {
    return std::make_unique<TrainLoaderOf<backprop::io::DataLoader<float>>>(train, o.batch_size,
                                                                            o.shuffle, o.seed);
  }
  /// In place, the sum over ranks (MPI_Allreduce); alone, nothing to add.
  virtual void sum(double*, Index) {}
  virtual void sum(float*, Index) {}
  /// True on every rank when it is true on one (so that all stop at the same step).
  virtual bool any(bool flag) { return flag; }
  /// After training, on every rank: steps and seconds of this process's training.
  virtual void after_training(Module<float>&, backprop::Optimizer<float>&, std::int64_t, double) {}
};

// --- Ctrl-C: the handler only sets a flag; the loop checks it between steps. -------------
namespace detail {
inline volatile std::sig_atomic_t stop_signal = 0;
extern "C" inline void on_stop_signal(int signal) { stop_signal = signal; }
}  // namespace detail

/// SIGINT and SIGTERM ask the run to stop after the current step, once; a second one ends
/// the program at once (SA_RESETHAND restores the default action).
inline void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = detail::on_stop_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}
inline int stop_signal() { return detail::stop_signal; }

// --- Checkpoints: which preset wrote them. ------------------------------------------------

/// "bn-mlp" or "deep-mlp" from the file's metadata or, for a plain state_dict (PyTorch's
/// included), from its key names; "" when neither tells.
inline std::string preset_of(const backprop::io::SafetensorsFile& file) {
  const auto it = file.metadata.find("preset");
  if (it != file.metadata.end()) return it->second;
  if (file.find("layer1.0.weight")) return "bn-mlp";
  if (file.find("0.weight") && (file.find("8.weight") || file.find("12.weight"))) return "deep-mlp";
  return "";
}

inline void check_preset(const backprop::io::SafetensorsFile& file, const std::string& flag,
                         const Options& o) {
  const std::string p = preset_of(file);
  if (!p.empty() && p != o.preset)
    throw std::runtime_error(file.path + ": a checkpoint of " + p + " (reference " +
                             (p == "bn-mlp" ? "1" : "2") + "), and this run is " + o.preset +
                             ": add --preset " + p + " to " + flag + " it");
}

/// PyTorch's class name of --optimizer, as checkpoints record it ("optimizer" metadata).
inline const char* optimizer_class(const std::string& flag) {
  return flag == "adam" ? "Adam" : flag == "adamw" ? "AdamW" : "SGD";
}

/// A checkpoint resumes with the optimizer and dropout it was trained with (a checkpoint
/// without "run.dropout" predates --dropout: 0).
inline void check_run_flags(const backprop::io::SafetensorsFile& file, const Options& o) {
  const auto get = [&](const char* key, const char* absent) {
    const auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string(absent) : it->second;
  };
  const std::string kind = get("optimizer", "SGD");
  if (kind != optimizer_class(o.optimizer)) {
    std::string flag = kind;
    for (char& c : flag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    throw std::runtime_error(file.path + ": a checkpoint of optimizer " + kind +
                             ", and this run is " + optimizer_class(o.optimizer) +
                             ": add --optimizer " + flag + " to --resume it");
  }
  const std::string dropout = get("run.dropout", "0");
  if (dropout != backprop::detail::format_double(o.dropout))
    throw std::runtime_error(file.path + ": a checkpoint trained with --dropout " + dropout +
                             ", and this run has --dropout " +
                             backprop::detail::format_double(o.dropout) + ": add --dropout " +
                             dropout + " to --resume it");
}

inline std::unique_ptr<backprop::Optimizer<float>> make_optimizer(const Options& o,
                                                                  Module<float>& model) {
  if (o.optimizer == "adam")
    return std::make_unique<backprop::Adam<float>>(model.parameters(), o.lr, std::pair(0.9, 0.999),
                                                   1e-8, o.weight_decay);
  if (o.optimizer == "adamw")
    return std::make_unique<backprop::AdamW<float>>(model.parameters(), o.lr, std::pair(0.9, 0.999),
                                                    1e-8, o.weight_decay);
  return std::make_unique<backprop::SGD<float>>(model.parameters(), o.lr, o.momentum, 0,
                                                o.weight_decay);
}

inline std::unique_ptr<Module<float>> make_model(const Options& o, Index in, Index classes) {
  std::unique_ptr<Module<float>> model;
  if (o.preset == "deep-mlp")
    model = std::make_unique<backprop::Sequential<float>>(deep_mlp<float>(in, classes, o.dropout));
  else
    model = std::make_unique<Net<float>>(in, 300, 100, classes, o.dropout);
  model->set_input_requires_grad(false);  // the images need no gradient: skip dy * W in layer 1
  return model;
}

/// A directory the run writes into (`flag` says why) exists and may be written: checked before
/// training, so that a bad --out or --save costs no epoch (the write itself would fail cleanly,
/// but only after the epoch it saves).
inline void check_writable_directory(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw std::runtime_error(dir + ": no such directory (" + flag + ")");
  if (access(dir.c_str(), W_OK | X_OK) != 0)
    throw std::runtime_error(dir + ": cannot write there (" + flag + "): " + std::strerror(errno));
}

/// The name of the model's first tensor (a weight, a BatchNorm statistic) holding a NaN or an
/// infinity; "" when all are finite.
inline std::string first_non_finite(Module<float>& model) {
  for (const backprop::StateEntry<float>& e : model.state_dict())
    if (const auto* t = std::get_if<Tensor<float>*>(&e.tensor))
      if (!(*t)->vector().allFinite()) return e.name;
  return "";
}

inline bool all_finite(Module<float>& model) { return first_non_finite(model).empty(); }

/// Finds the optimizer's first state tensor (a momentum buffer, Adam's exp_avg, ...) holding
/// a NaN or an infinity.
struct NonFiniteState : backprop::OptimizerStateVisitor<float> {
  std::string found;  // "momentum_buffer of parameter 3"
  void tensors(std::string_view kind, std::vector<Tensor<float>>& per_parameter) override {
    for (std::size_t i = 0; i < per_parameter.size() && found.empty(); ++i)
      if (!per_parameter[i].vector().allFinite())
        found = std::string(kind) + " of parameter " + std::to_string(i);
  }
  void counter(std::string_view, std::int64_t&) override {}
};

/// What was read from `file` must be finite: training from a NaN gives a NaN loss, whose error
/// would blame --lr.
inline void check_loaded_finite(Module<float>& model, backprop::Optimizer<float>& optimizer,
                                const std::string& file) {
  const std::string name = first_non_finite(model);
  if (!name.empty())
    throw std::runtime_error(file + ": tensor '" + name + "' holds NaN or infinite values");
  NonFiniteState state;
  optimizer.visit_state(state);
  if (!state.found.empty())
    throw std::runtime_error(file + ": the optimizer's " + state.found +
                             " holds NaN or infinite values");
}

/// Where the checkpoint at --save goes when this run first saves, if it is another run's (a
/// fresh run into the same --out, say): <stem>.previous<ext>, so one generation is kept. ""
/// when there is none, or when this run continues it (--resume). Checked before training.
inline std::string earlier_checkpoint_destination(const Options& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(o.save, ec)) return "";
  if (!o.resume.empty() && fs::equivalent(o.save, o.resume, ec)) return "";  // continuing it
  if (!fs::is_regular_file(o.save, ec))
    throw std::runtime_error(o.save + ": exists and is not a regular file (--save)");
  fs::path previous = o.save;
  previous.replace_filename(previous.stem().string() + ".previous" + previous.extension().string());
  if (fs::exists(previous, ec) && !fs::is_regular_file(previous, ec))
    throw std::runtime_error(previous.string() + ": exists and is not a regular file, so " +
                             o.save + " cannot be moved aside there: --save elsewhere");
  for (const std::string* start : {&o.load, &o.resume})
    if (!start->empty() && fs::equivalent(previous, *start, ec))
      throw std::runtime_error(o.save + ": saving there would move it onto " + previous.string() +
                               ", the file this run starts from: --save elsewhere");
  return previous.string();
}

/// BatchNorm1d cannot train on a batch of one sample (nor can PyTorch's): a training set that
/// leaves one last is refused before training, not at the end of the first epoch.
inline void check_last_batch(const Options& o, const TrainLoader& loader,
                             const backprop::io::MnistDataset<float>& train) {
  if (o.preset != "bn-mlp" || loader.num_batches() == 0) return;
  const Index n = loader.num_samples(), last = n - (loader.num_batches() - 1) * o.batch_size;
  if (last == 1)
    throw std::runtime_error(train.images_path() + ": " + std::to_string(n) +
                             " samples per epoch leave a last batch of 1 at --batch-size " +
                             std::to_string(o.batch_size) +
                             ", and BatchNorm1d needs 2 or more to train: choose another "
                             "--batch-size");
}

/// The data, the model with its optimizer, schedule and loss, and for --load / --resume the
/// restored state; for a resumed run also o.seed (the checkpoint's, so the shuffles continue
/// as they would have) and the position inside the epoch. Rank 0 makes the output directory.
struct Session {
  Session(Options& o, World& world)
      : train(load(o, /*train=*/true)),
        test(load(o, /*train=*/false)),
        model(checked_model(o, train, test)),
        optimizer_(make_optimizer(o, *model)),
        optimizer(*optimizer_),
        // bn-mlp decays at the start of epoch 0 too, as reference 1's "if epoch % 5 == 0".
        schedule(optimizer, o.lr_step, o.lr_gamma, o.preset == "bn-mlp") {
    if (!o.load.empty()) {
      const backprop::io::SafetensorsFile file = backprop::io::read_safetensors(o.load);
      check_preset(file, "--load", o);
      backprop::io::load_state_dict(file, *model);
      check_loaded_finite(*model, optimizer, o.load);
    }
    if (!o.resume.empty()) {
      const backprop::io::SafetensorsFile file = backprop::io::read_safetensors(o.resume);
      check_preset(file, "--resume", o);
      check_run_flags(file, o);
      const backprop::io::CheckpointState s =
          backprop::io::load_checkpoint(o.resume, *model, optimizer, backprop::default_generator());
      check_loaded_finite(*model, optimizer, o.resume);
      h = History::from_metadata(s.metadata, s.epoch, o.resume);
      o.seed = h.seed;
      resumed_mid_epoch(o, world, s.metadata);
    }
    h.at.rank_sums.resize(2 * static_cast<std::size_t>(world.size()), 0.0);
    if (world.root() && o.epochs > h.at.epoch) {
      std::error_code ec;
      std::filesystem::create_directories(o.out, ec);
      if (ec)
        throw std::runtime_error(o.out + ": cannot create the output directory: " + ec.message());
      check_writable_directory(o.out, "--out");
      if (!o.save.empty()) {
        const std::string dir = std::filesystem::path(o.save).parent_path().string();
        check_writable_directory(dir.empty() ? "." : dir, "--save " + o.save);
        earlier_checkpoint_ = earlier_checkpoint_destination(o);
      }
    }
    last_good_ = o.resume;  // until this run saves
  }
  Session(const Session&) = delete;  // optimizer and schedule point into it
  Session& operator=(const Session&) = delete;

  /// Metadata for a checkpoint at `at` (rank_sums: every rank's, gathered).
  backprop::io::Metadata metadata(const Options& o, const World& world, const Position& at) {
    h.seed = o.seed;
    backprop::io::Metadata meta = h.to_metadata(at);
    meta["preset"] = o.preset;
    meta["run.dropout"] = backprop::detail::format_double(o.dropout);
    meta["run.batch_size"] = std::to_string(o.batch_size);
    meta["run.world_size"] = std::to_string(world.size());
    return meta;
  }

  /// Writes the checkpoint at `at` to --save (rank 0; every rank calls it). The first save of a
  /// run moves an earlier run's checkpoint there aside, and says so.
  void save(const Options& o, const World& world, const Position& at) {
    last_good_ = o.save;
    if (!world.root()) return;
    std::error_code ec;
    if (!earlier_checkpoint_.empty() && std::filesystem::exists(o.save, ec)) {
      std::filesystem::rename(o.save, earlier_checkpoint_, ec);
      if (ec)
        throw std::runtime_error(o.save + ": cannot move the earlier checkpoint aside to " +
                                 earlier_checkpoint_ + ": " + ec.message());
      std::fprintf(stderr, "%s held an earlier checkpoint: kept as %s\n", o.save.c_str(),
                   earlier_checkpoint_.c_str());
    }
    earlier_checkpoint_.clear();
    backprop::io::save_checkpoint(o.save, *model, optimizer, at.epoch,
                                  backprop::default_generator(), metadata(o, world, at));
  }

  /// The last checkpoint of this run: the one it saved, else the one it resumed; "" if none
  /// (an earlier run's checkpoint at --save is not this run's).
  const std::string& last_good_checkpoint() const { return last_good_; }

  const backprop::io::MnistDataset<float> train, test;
  std::unique_ptr<Module<float>> model;
  std::unique_ptr<backprop::Optimizer<float>> optimizer_;  // --optimizer's
  backprop::Optimizer<float>& optimizer;
  backprop::StepLR<backprop::Optimizer<float>> schedule;
  backprop::CrossEntropyLoss<float> criterion;
  History h;  // h.at: where the run is

 private:
  std::string earlier_checkpoint_;  // see earlier_checkpoint_destination()
  std::string last_good_;           // see last_good_checkpoint()

  // One split of --data-dir: at least one sample of at least one pixel, and labels in
  // [0, --classes). The dataset is told 256 classes (any byte), so that the check here can
  // name the flag.
  static backprop::io::MnistDataset<float> load(const Options& o, bool train) {
    backprop::io::MnistDataset<float> d(o.data_dir, train, 0.5f, 0.5f, 256);
    if (d.size() == 0) throw std::runtime_error(d.images_path() + ": holds no images");
    if (d.num_features() == 0)
      throw std::runtime_error(d.images_path() + ": images of " + std::to_string(d.rows()) + "x" +
                               std::to_string(d.cols()) + " pixels hold no values");
    const std::int64_t* labels = d.labels().data();
    for (Index i = 0; i < d.size(); ++i)
      if (labels[i] >= o.classes)
        throw std::runtime_error(d.labels_path() + ": label " + std::to_string(labels[i]) +
                                 " at index " + std::to_string(i) + " is outside [0, " +
                                 std::to_string(o.classes) +
                                 "): --classes N sets the number of classes");
    return d;
  }

  // The test set must fit the model built for the training set; the model starts from
  // manual_seed(o.seed), as the reference programs' torch.manual_seed.
  static std::unique_ptr<Module<float>> checked_model(
      const Options& o, const backprop::io::MnistDataset<float>& train,
      const backprop::io::MnistDataset<float>& test) {
    if (test.num_features() != train.num_features())
      throw std::runtime_error(test.images_path() + ": images are " + std::to_string(test.rows()) +
                               "x" + std::to_string(test.cols()) + ", the training images " +
                               std::to_string(train.rows()) + "x" + std::to_string(train.cols()));
    backprop::manual_seed(o.seed);
    return make_model(o, train.num_features(), o.classes);
  }

  // A checkpoint taken inside an epoch continues with the same batches: same batch size and
  // number of processes. Each rank keeps its own running sums only.
  void resumed_mid_epoch(const Options& o, const World& world, const backprop::io::Metadata& meta) {
    if (h.at.step == 0) return;
    const auto get = [&](const char* key) {
      const auto it = meta.find(key);
      return it == meta.end() ? std::string("?") : it->second;
    };
    const std::string batch = get("run.batch_size"), ranks = get("run.world_size");
    if (batch != std::to_string(o.batch_size) || ranks != std::to_string(world.size()))
      throw std::runtime_error(
          o.resume + ": stopped inside epoch " + std::to_string(h.at.epoch) +
          " with --batch-size " + batch + " on " + ranks +
          " process(es); resume it with the same (this run: " + std::to_string(o.batch_size) +
          " on " + std::to_string(world.size()) + ")");
    if (h.at.rank_sums.size() != 2 * static_cast<std::size_t>(world.size()))
      throw std::runtime_error(o.resume + ": metadata 'history.position' is malformed");
    for (std::size_t i = 0; i < h.at.rank_sums.size(); ++i)
      if (i / 2 != static_cast<std::size_t>(world.rank())) h.at.rank_sums[i] = 0;
  }
};

/// The per-batch mean loss and accuracy over one pass, as both references average them, and
/// the accuracy over samples.
struct PassResult {
  double loss = 0, acc = 0, acc_per_sample = 0;
};

inline PassResult evaluate(Module<float>& model, backprop::io::DataLoader<float>& loader,
                           ProgressBar& bar,
                           std::vector<std::vector<std::int64_t>>* confusion = nullptr) {
  model.eval();
  backprop::NoGradGuard no_grad;  // with torch.no_grad(): Linear keeps no copy of its input
  backprop::CrossEntropyLoss<float> criterion;
  PassResult r;
  std::int64_t correct = 0, samples = 0;
  bar.start("test", loader.num_batches());
  for (Index b = 0; b < loader.num_batches(); ++b) {
    const backprop::io::Batch<float>& batch = loader.batch(b);
    const Tensor<float>& out = model.forward(batch.images);
    r.loss += criterion.forward(out, batch.labels);
    const Index right = backprop::num_correct(out, batch.labels);
    r.acc += static_cast<double>(right) / static_cast<double>(batch.size());
    correct += right, samples += batch.size();
    if (confusion)
      for (Index i = 0; i < batch.size(); ++i) {
        Index pred = 0;
        out.matrix().row(i).maxCoeff(&pred);
        (*confusion)[static_cast<std::size_t>(batch.labels[i])][static_cast<std::size_t>(pred)]++;
      }
    bar.update(b + 1, batch.size());
  }
  bar.finish();
  r.loss /= static_cast<double>(loader.num_batches());
  r.acc /= static_cast<double>(loader.num_batches());
  r.acc_per_sample = static_cast<double>(correct) / static_cast<double>(samples);
  return r;
}

}  // namespace mnist
