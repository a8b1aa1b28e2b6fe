// SPDX-License-Identifier: MIT
// The MNIST example: trains reference 1 (bn-mlp) or reference 2 (deep-mlp) as their PyTorch
// programs do, prints reference 1's per-epoch line, and writes metrics, checkpoints and
// pictures. Usage: mnist --help. Walkthrough: examples/mnist/README.md.
#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/mnist.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "models.hpp"
#include "options.hpp"
#include "plots.hpp"
#include "progress.hpp"

namespace {

using namespace backprop;
using io::Batch;
using io::DataLoader;
using io::MnistDataset;
using mnist::Options;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// One row of metrics.csv, and of the printed line.
struct EpochMetrics {
  std::int64_t epoch;
  double lr, train_loss, train_acc, test_loss, test_acc, seconds;
};

// Everything a run accumulates besides the model and optimizer; it rides in the checkpoint's
// metadata, so a resumed run's files and pictures continue the interrupted ones.
struct History {
  std::vector<EpochMetrics> epochs;
  std::vector<float> losses;  // every training step's loss
  double train_seconds = 0;
  std::uint64_t seed = 0;     // of the shuffles

  io::Metadata to_metadata() const {
    std::ostringstream e, l;
    e.precision(17);
    for (const EpochMetrics& m : epochs)
      e << m.epoch << ',' << m.lr << ',' << m.train_loss << ',' << m.train_acc << ','
        << m.test_loss << ',' << m.test_acc << ',' << m.seconds << ';';
    l.precision(9);
    for (float v : losses) l << v << ',';
    std::ostringstream t;
    t.precision(17);
    t << train_seconds;
    return {{"history.epochs", e.str()}, {"history.losses", l.str()},
            {"history.train_seconds", t.str()}, {"seed", std::to_string(seed)}};
  }

  static History from_metadata(const io::Metadata& meta, const std::string& path) {
    History h;
    const auto get = [&](const char* key) {
      const auto it = meta.find(key);
      if (it == meta.end())
        throw std::runtime_error(path + ": not a checkpoint of this example (no '" + key + "')");
      return it->second;
    };
    std::istringstream e(get("history.epochs")), l(get("history.losses"));
    std::string row;
    while (std::getline(e, row, ';')) {
      EpochMetrics m{};
      char c1, c2, c3, c4, c5, c6;
      std::istringstream r(row);
      if (!(r >> m.epoch >> c1 >> m.lr >> c2 >> m.train_loss >> c3 >> m.train_acc >> c4 >>
            m.test_loss >> c5 >> m.test_acc >> c6 >> m.seconds))
        throw std::runtime_error(path + ": metadata 'history.epochs' is malformed");
      h.epochs.push_back(m);
    }
    try {
      std::string v;
      while (std::getline(l, v, ',')) h.losses.push_back(std::stof(v));
      h.train_seconds = std::stod(get("history.train_seconds"));
      h.seed = std::stoull(get("seed"));
    } catch (const std::logic_error&) {  // stof/stod/stoull: not a number
      throw std::runtime_error(path + ": metadata 'history.losses', 'history.train_seconds' or "
                               "'seed' is malformed");
    }
    return h;
  }
};

std::unique_ptr<Module<float>> make_model(const Options& o, Index in, Index classes) {
  std::unique_ptr<Module<float>> model;
  if (o.preset == "deep-mlp") model = std::make_unique<Sequential<float>>(mnist::deep_mlp<float>(in, classes));
  else model = std::make_unique<mnist::Net<float>>(in, 300, 100, classes);
  model->set_input_requires_grad(false);  // the images need no gradient: skip dy * W in layer 1
  return model;
}

// A text file written whole, atomically: a crash never leaves half a metrics.csv behind.
void write_text(const std::string& path, const std::string& text) {
  io::write_file_atomic(path, text);
}

void write_metrics_csv(const std::string& path, const History& h) {
  std::ostringstream o;
  o << "epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds\n";
  for (const EpochMetrics& m : h.epochs) {
    char line[256];
    std::snprintf(line, sizeof line, "%lld,%.6g,%.6f,%.6f,%.6f,%.6f,%.3f\n",
                  static_cast<long long>(m.epoch), m.lr, m.train_loss, m.train_acc, m.test_loss,
                  m.test_acc, m.seconds);
    o << line;
  }
  write_text(path, o.str());
}

void write_losses_csv(const std::string& path, const History& h) {
  std::ostringstream o;
  o.precision(9);
  o << "iteration,loss\n";
  for (std::size_t i = 0; i < h.losses.size(); ++i) o << i << ',' << h.losses[i] << '\n';
  write_text(path, o.str());
}

// Mean of the per-batch loss and accuracy over one pass, as both references average.
struct PassResult {
  double loss = 0, acc = 0;
};

PassResult evaluate(Module<float>& model, DataLoader<float>& loader, mnist::ProgressBar& bar,
                    std::vector<std::vector<std::int64_t>>* confusion = nullptr) {
  model.eval();
  CrossEntropyLoss<float> criterion;
  PassResult r;
  bar.start("test", loader.num_batches());
  for (Index b = 0; b < loader.num_batches(); ++b) {
    const Batch<float>& batch = loader.batch(b);
    const Tensor<float>& out = model.forward(batch.images);
    r.loss += criterion.forward(out, batch.labels);
    r.acc += static_cast<double>(num_correct(out, batch.labels)) / static_cast<double>(batch.size());
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
  return r;
}

bool all_finite(Module<float>& model) {
  for (const StateEntry<float>& e : model.state_dict())
    if (const auto* t = std::get_if<Tensor<float>*>(&e.tensor))
      if (!(*t)->vector().allFinite()) return false;
  return true;
}

// The pictures of reference 1 (sample digits, loss/accuracy curves), reference 2 (the loss
// every 30 iterations) and a confusion matrix; returns the file names.
std::vector<std::string> write_pictures(const Options& o, Module<float>& model,
                                        const MnistDataset<float>& test, const History& h,
                                        const std::vector<std::vector<std::int64_t>>& confusion) {
  std::vector<std::string> files;
  const auto write = [&](const std::string& name, const std::string& svg) {
    write_text(o.out + "/" + name, svg);
    files.push_back(o.out + "/" + name);
  };

  // 1. The first six test digits with their labels and the model's predictions.
  const Index n = std::min<Index>(6, test.size()), f = test.num_features();
  Tensor<float> first({n, f});
  first.matrix() = test.images().matrix().topRows(n);
  model.eval();
  const Tensor<float>& out = model.forward(first);
  std::vector<std::vector<std::uint8_t>> pixels;
  std::vector<int> labels, predictions;
  for (Index i = 0; i < n; ++i) {
    std::vector<std::uint8_t> img(static_cast<std::size_t>(f));
    for (Index j = 0; j < f; ++j)  // undo Normalize(0.5, 0.5) and ToTensor()
      img[static_cast<std::size_t>(j)] = static_cast<std::uint8_t>(
          std::lround(std::clamp((first.at({i, j}) * 0.5f + 0.5f) * 255.0f, 0.0f, 255.0f)));
    pixels.push_back(img);
    labels.push_back(static_cast<int>(test.labels()[i]));
    Index pred = 0;
    out.matrix().row(i).maxCoeff(&pred);
    predictions.push_back(static_cast<int>(pred));
  }
  write("digits.svg", mnist::digits_svg(pixels, static_cast<int>(test.rows()),
                                        static_cast<int>(test.cols()), labels, predictions));

  // 2. Train/test loss and accuracy per epoch.
  mnist::Series train_loss{"train loss", "#1f77b4", {}, {}}, test_loss{"test loss", "#ff7f0e", {}, {}};
  mnist::Series train_acc{"train acc", "#1f77b4", {}, {}}, test_acc{"test acc", "#ff7f0e", {}, {}};
  for (const EpochMetrics& m : h.epochs) {
    const double e = static_cast<double>(m.epoch);
    train_loss.x.push_back(e), train_loss.y.push_back(m.train_loss);
    test_loss.x.push_back(e), test_loss.y.push_back(m.test_loss);
    train_acc.x.push_back(e), train_acc.y.push_back(m.train_acc);
    test_acc.x.push_back(e), test_acc.y.push_back(m.test_acc);
  }
  write("curves.svg",
        mnist::svg_document(900, 360,
                            mnist::line_panel(0, 0, 450, 360, "loss (" + o.preset + ")", "epoch",
                                              {train_loss, test_loss}, true) +
                                mnist::line_panel(450, 0, 450, 360, "accuracy", "epoch",
                                                  {train_acc, test_acc}, true)));

  // 3. The loss every 30 iterations, as reference 2's losses1.
  mnist::Series every30{"loss", "#d62728", {}, {}};
  for (std::size_t i = 0; i < h.losses.size(); i += 30)
    every30.x.push_back(static_cast<double>(i)), every30.y.push_back(h.losses[i]);
  write("loss_every_30.svg",
        mnist::svg_document(700, 360, mnist::line_panel(0, 0, 700, 360,
                                                        "training loss every 30 iterations",
                                                        "iteration", {every30})));

  // 4. Confusion matrix on the test set.
  write("confusion.svg", mnist::confusion_svg(confusion, "confusion matrix (test set)"));

  // On a terminal, the digits as text too.
  if (::isatty(STDERR_FILENO) == 1) {
    const char* shades = " .:-=+*#%@";
    for (Index r = 0; r < test.rows(); r += 2) {
      for (Index i = 0; i < n; ++i) {
        for (Index c = 0; c < test.cols(); ++c)
          std::fputc(shades[pixels[static_cast<std::size_t>(i)][static_cast<std::size_t>(r * test.cols() + c)] * 9 / 255], stderr);
        std::fputs("  ", stderr);
      }
      std::fputc('\n', stderr);
    }
    for (Index i = 0; i < n; ++i)
      std::fprintf(stderr, "%-*s", static_cast<int>(test.cols() + 2),
                   ("label " + std::to_string(labels[static_cast<std::size_t>(i)]) + " pred " +
                    std::to_string(predictions[static_cast<std::size_t>(i)]))
                       .c_str());
    std::fputc('\n', stderr);
  }
  return files;
}

// What run() and run_distributed() both start from: the data, the model with its optimizer,
// schedule and loss, and for --load / --resume the restored state. Builds the output
// directory when make_out_dir (rank 0 only, under MPI). For a resumed run it sets o.seed to
// the checkpoint's, so the shuffles continue as they would have.
struct Session {
  Session(Options& o, bool make_out_dir)
      : train(o.data_dir, /*train=*/true),
        test(o.data_dir, /*train=*/false),
        model(checked_model(o, train, test)),
        optimizer(model->parameters(), o.lr, o.momentum),
        // bn-mlp decays at the start of epoch 0 too, as reference 1's "if epoch % 5 == 0".
        schedule(optimizer, o.lr_step, o.lr_gamma, o.preset == "bn-mlp") {
    if (make_out_dir) {
      std::error_code ec;
      std::filesystem::create_directories(o.out, ec);
      if (ec) throw std::runtime_error(o.out + ": cannot create the output directory: " + ec.message());
    }
    if (!o.load.empty()) io::load_state_dict(o.load, *model);
    if (!o.resume.empty()) {
      const io::CheckpointState s = io::load_checkpoint(o.resume, *model, optimizer, default_generator());
      const auto preset = s.metadata.find("preset");
      if (preset == s.metadata.end() || preset->second != o.preset)
        throw std::runtime_error(o.resume + ": checkpoint of preset '" +
                                 (preset == s.metadata.end() ? "?" : preset->second) +
                                 "', this run is '" + o.preset + "'");
      h = History::from_metadata(s.metadata, o.resume);
      o.seed = h.seed;
      start_epoch = s.epoch;
    }
  }
  Session(const Session&) = delete;  // optimizer and schedule point into it
  Session& operator=(const Session&) = delete;

  // The test set must fit the model built for the training set; the model starts from
  // manual_seed(o.seed), as the reference programs' torch.manual_seed.
  static std::unique_ptr<Module<float>> checked_model(const Options& o, const MnistDataset<float>& train,
                                                      const MnistDataset<float>& test) {
    if (test.num_features() != train.num_features() || test.num_classes() != train.num_classes())
      throw std::runtime_error(test.images_path() + ": images are " + std::to_string(test.rows()) +
                               "x" + std::to_string(test.cols()) + ", the training images " +
                               std::to_string(train.rows()) + "x" + std::to_string(train.cols()));
    manual_seed(o.seed);
    return make_model(o, train.num_features(), train.num_classes());
  }

  const MnistDataset<float> train, test;
  std::unique_ptr<Module<float>> model;
  SGD<float> optimizer;
  StepLR<SGD<float>> schedule;
  CrossEntropyLoss<float> criterion;
  History h;
  std::int64_t start_epoch = 0;
};

// After training (on rank 0 under MPI): the confusion matrix over the test set, the
// pictures, and where everything went.
int finish(const Options& o, Session& session, DataLoader<float>& test_loader, mnist::ProgressBar& bar) {
  if (session.h.epochs.empty()) {
    std::fprintf(stderr, "nothing to train: the run is already at epoch %lld of %lld\n",
                 static_cast<long long>(session.start_epoch), static_cast<long long>(o.epochs));
    return 0;
  }
  const std::size_t classes = static_cast<std::size_t>(session.train.num_classes());
  std::vector<std::vector<std::int64_t>> confusion(classes, std::vector<std::int64_t>(classes, 0));
  evaluate(*session.model, test_loader, bar, &confusion);
  const std::vector<std::string> files =
      write_pictures(o, *session.model, session.test, session.h, confusion);
  std::fprintf(stderr, "wrote %s/metrics.csv, %s/losses.csv%s%s\n", o.out.c_str(), o.out.c_str(),
               o.save.empty() ? "" : ", ", o.save.c_str());
  std::fprintf(stderr, "pictures (open in a browser):\n");
  for (const std::string& f : files) std::fprintf(stderr, "  %s\n", f.c_str());
  return 0;
}

int run(Options o) {
  set_num_threads(o.threads > 0 ? o.threads : mnist::default_threads());
  Session session(o, /*make_out_dir=*/true);
  auto& [train, test, model, optimizer, schedule, criterion, h, start_epoch] = session;

  DataLoader<float> train_loader(train, o.batch_size, o.shuffle, o.seed);
  DataLoader<float> test_loader(test, o.test_batch_size);
  mnist::ProgressBar bar;
  std::int64_t steps_left = o.max_steps;

  for (std::int64_t epoch = start_epoch; epoch < o.epochs && steps_left != 0; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    model->train();
    const double lr = schedule.set_epoch(epoch);
    train_loader.set_epoch(static_cast<std::uint64_t>(epoch));
    PassResult tr;
    Index batches = 0;
    bar.start("epoch " + std::to_string(epoch), train_loader.num_batches());
    for (Index b = 0; b < train_loader.num_batches() && steps_left != 0; ++b, --steps_left) {
      const Batch<float>& batch = train_loader.batch(b);
      optimizer.zero_grad();
      const Tensor<float>& out = model->forward(batch.images);
      const float loss = criterion.forward(out, batch.labels);
      if (!std::isfinite(loss)) {
        bar.finish();
        char what[512];
        std::snprintf(what, sizeof what,
                      "the training loss became %g at epoch %lld, step %ld (lr %g): try a smaller "
                      "--lr, or check that the inputs are normalised%s%s",
                      static_cast<double>(loss), static_cast<long long>(epoch), static_cast<long>(b),
                      lr, std::filesystem::exists(o.save) ? "; the last good checkpoint is " : "",
                      std::filesystem::exists(o.save) ? o.save.c_str() : "");
        throw std::runtime_error(what);
      }
      model->backward(criterion.backward());
      optimizer.step();
      tr.loss += loss;
      tr.acc += static_cast<double>(num_correct(out, batch.labels)) / static_cast<double>(batch.size());
      h.losses.push_back(loss);
      ++batches;
      bar.update(b + 1, batch.size());
    }
    bar.finish();
    h.train_seconds += seconds_since(epoch_start);
    if (!all_finite(*model))
      throw std::runtime_error("the weights are no longer finite after epoch " +
                               std::to_string(epoch) + ": try a smaller --lr; nothing was saved "
                               "for this epoch");
    const PassResult te = evaluate(*model, test_loader, bar);
    tr.loss /= static_cast<double>(batches);
    tr.acc /= static_cast<double>(batches);
    h.epochs.push_back({epoch, lr, tr.loss, tr.acc, te.loss, te.acc, seconds_since(epoch_start)});
    std::printf("epoch: %lld, Train Loss: %.4f, Train Acc: %.4f, Test Loss: %.4f, Test Acc: %.4f\n",
                static_cast<long long>(epoch), tr.loss, tr.acc, te.loss, te.acc);
    std::fflush(stdout);

    write_metrics_csv(o.out + "/metrics.csv", h);
    write_losses_csv(o.out + "/losses.csv", h);
    if (!o.save.empty()) {
      h.seed = o.seed;
      io::Metadata meta = h.to_metadata();
      meta["preset"] = o.preset;
      io::save_checkpoint(o.save, *model, optimizer, epoch + 1, default_generator(), meta);
    }
  }
  if (o.preset == "deep-mlp") std::printf("time:%.5f\n", h.train_seconds);  // as reference 2

  return finish(o, session, test_loader, bar);
}

}  // namespace

#ifdef BACKPROP_MNIST_MPI
#include "distributed.hpp"  // --distributed: run_distributed(), which shares the helpers above
#endif

int main(int argc, char** argv) {
  Options options;
  try {
    if (!mnist::parse_options(argc, argv, options)) {
      std::fputs(mnist::usage_text(), stdout);
      return 0;
    }
  } catch (const mnist::UsageError& e) {
    std::fprintf(stderr, "mnist: %s\n", e.what());
    return 2;
  }
  try {
#ifdef BACKPROP_MNIST_MPI
    if (options.distributed) return run_distributed(options);
#else
    if (options.distributed)
      throw std::runtime_error("--distributed needs MPI, and this mnist was built without it "
                               "(./scripts/test.sh --mpi installs it and builds with it)");
#endif
    return run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist: error: %s\n", e.what());
    return 1;
  }
}
