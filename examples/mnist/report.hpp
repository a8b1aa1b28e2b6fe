// SPDX-License-Identifier: MIT
// The MNIST example's bookkeeping around its training loop (main.cpp): the end of an epoch
// (test pass, reference 1's line, metrics.csv, losses.csv, checkpoint), the stop point of an
// interrupted run, and the end of the run (pictures, what was written, how to continue).
#pragma once

#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "history.hpp"
#include "pictures.hpp"
#include "progress.hpp"
#include "session.hpp"

namespace mnist {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

enum class Stop { none, max_steps, signal };

/// True (after saying so) when the run has nothing to do; then it writes nothing.
inline bool nothing_to_train(const Options& o, const Session& s, const World& world) {
  std::string why;
  if (o.epochs == 0)
    why = "--epochs is 0";
  else if (o.max_steps == 0)
    why = "--max-steps is 0";
  else if (s.h.at.epoch >= o.epochs)
    why = o.resume + " has finished " + std::to_string(s.h.at.epoch) +
          " epoch(s) and --epochs is " + std::to_string(o.epochs) +
          "; a larger --epochs trains more";
  if (why.empty()) return false;
  if (world.root()) std::fprintf(stderr, "nothing to train: %s\n", why.c_str());
  return true;
}

inline std::runtime_error diverged(const Session& s, float loss, const Position& at, double lr) {
  char what[256];
  std::snprintf(what, sizeof what,
                "the training loss became %g at epoch %lld, step %lld (lr %g): try a smaller --lr, "
                "or check that the inputs are normalised",
                static_cast<double>(loss), static_cast<long long>(at.epoch),
                static_cast<long long>(at.step), lr);
  const std::string& last = s.last_good_checkpoint();
  return std::runtime_error(last.empty() ? what : what + ("; the last good checkpoint is " + last));
}

// distributed: every rank ran the same steps on equal batches, so the mean over ranks of a
// step's losses is the loss of the global batch: one call per epoch, not per step.
inline void append_losses(World& world, std::vector<float>& losses, History& h) {
  world.sum(losses.data(), static_cast<Index>(losses.size()));
  for (float l : losses) h.losses.push_back(l / static_cast<float>(world.size()));
  losses.clear();
}

// Every rank's running sums, on every rank (a rank adds its own into zeros: exact).
inline std::vector<double> gathered_sums(World& world, const Position& at) {
  std::vector<double> all = at.rank_sums;
  world.sum(all.data(), static_cast<Index>(all.size()));
  return all;
}

// Reference 1's line; on a terminal narrower than it, in two lines (elsewhere, as a pipe
// into a log, always one).
inline void print_epoch_line(const EpochMetrics& m) {
  char first[128], second[128];
  std::snprintf(first, sizeof first, "epoch: %lld, Train Loss: %.4f, Train Acc: %.4f,",
                static_cast<long long>(m.epoch), m.train_loss, m.train_acc);
  std::snprintf(second, sizeof second, "Test Loss: %.4f, Test Acc: %.4f", m.test_loss, m.test_acc);
  const int columns = known_terminal_columns(STDOUT_FILENO);
  const bool narrow = columns > 0 && std::strlen(first) + 1 + std::strlen(second) >
                                         static_cast<std::size_t>(columns - 1);
  std::printf("%s%s%s\n", first, narrow ? "\n  " : " ", second);
  std::fflush(stdout);
}

inline void write_csvs(const Options& o, const History& h) {
  write_metrics_csv(o.out + "/metrics.csv", h);
  write_losses_csv(o.out + "/losses.csv", h);
}

/// After an epoch's last step: the test pass, the line, the files, the checkpoint (rank 0).
inline void end_of_epoch(const Options& o, Session& s, World& world, Module<float>& model,
                         backprop::io::DataLoader<float>& test_loader, ProgressBar& bar, double lr,
                         Index batches) {
  Position& at = s.h.at;
  const std::vector<double> all = gathered_sums(world, at);
  if (!all_finite(model))  // MPI: the replicas are identical, so every rank throws or none
    throw std::runtime_error("the weights are no longer finite after epoch " +
                             std::to_string(at.epoch) +
                             ": try a smaller --lr; nothing was saved "
                             "for this epoch");
  if (world.root()) {
    // distributed: rank 0 alone evaluates, with its own BatchNorm running statistics: the
    // model it saves, so a reloaded checkpoint scores what is printed here.
    const PassResult te = evaluate(*s.model, test_loader, bar);
    double loss = 0, acc = 0;
    for (std::size_t r = 0; r < all.size(); r += 2) loss += all[r], acc += all[r + 1];
    const double steps = static_cast<double>(batches) * world.size();
    s.h.epochs.push_back(
        {at.epoch, lr, loss / steps, acc / steps, te.loss, te.acc, te.acc_per_sample, at.seconds});
    print_epoch_line(s.h.epochs.back());
    write_csvs(o, s.h);
  }
  if (!o.save.empty()) s.save(o, world, Position{at.epoch + 1, 0, {}, 0});
  std::fill(at.rank_sums.begin(), at.rank_sums.end(), 0.0);
  at.seconds = 0;
}

// The command that continues this run, word by word: the same arguments, --resume the
// checkpoint, without --load (--resume restores the weights) and --max-steps.
inline std::vector<std::string> continue_command(const Options& o, const World& world) {
  std::vector<std::string> cmd;
  if (world.size() > 1) cmd = {"mpirun", "-np", std::to_string(world.size())};
  const auto quoted = [](const std::string& a) {
    if (!a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789-_=./:,+@%") == std::string::npos)
      return a;
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  cmd.push_back(quoted(o.command.empty() ? "mnist" : o.command[0]));
  for (std::size_t i = 1; i < o.command.size(); ++i) {
    const std::string& a = o.command[i];
    bool skip = false;
    for (const char* flag : {"--resume", "--load", "--max-steps"}) {
      if (a == flag) skip = true, ++i;  // and its value
      if (a.rfind(std::string(flag) + "=", 0) == 0) skip = true;
    }
    if (!skip) cmd.push_back(quoted(a));
  }
  cmd.push_back("--resume");
  cmd.push_back(quoted(o.save));
  return cmd;
}

// "  word word ..." indented by two; on a terminal of known width, broken at words with
// " \" so that each line fits (a word longer than the line stays whole).
inline std::string command_lines(const std::vector<std::string>& words, int columns) {
  std::string out, line = " ";
  for (const std::string& w : words) {
    if (columns > 0 && line.size() > 4 &&
        static_cast<int>(line.size() + 1 + w.size() + 2) > columns - 1)
      out += line + " \\\n", line = "   ";
    line += " " + w;
  }
  return out + line;
}

/// Where an interrupted run stopped, in the checkpoint (rank 0 writes it) and on screen.
inline void save_stop_point(const Options& o, Session& s, World& world, Stop stop, Index batches) {
  Position at = s.h.at;
  if (!all_finite(*s.model))  // MPI: identical replicas, so every rank throws or none
    throw std::runtime_error("the weights are no longer finite at epoch " +
                             std::to_string(at.epoch) + ", step " + std::to_string(at.step) +
                             ": try a smaller --lr; nothing was saved for these steps");
  at.rank_sums = gathered_sums(world, at);
  if (!o.save.empty()) s.save(o, world, at);
  if (!world.root()) return;
  std::fprintf(stderr, "%s at epoch %lld, step %lld of %lld\n",
               stop == Stop::signal ? "interrupted" : "stopped (--max-steps)",
               static_cast<long long>(at.epoch), static_cast<long long>(at.step),
               static_cast<long long>(batches));
  if (o.save.empty()) {
    std::fprintf(stderr, "no checkpoint was saved (--save none)\n");
  } else {
    std::fprintf(stderr, "saved %s; to continue from there:\n", o.save.c_str());
    std::fprintf(
        stderr, "%s\n",
        command_lines(continue_command(o, world), known_terminal_columns(STDERR_FILENO)).c_str());
  }
}

/// After training (rank 0): the files of the finished epochs, the pictures with the
/// confusion matrix of the current model, and the list of what was written.
inline int finish(const Options& o, Session& s, World& world,
                  backprop::io::DataLoader<float>& test_loader, ProgressBar& bar, Stop stop) {
  if (!world.root()) return stop == Stop::signal ? 128 + stop_signal() : 0;
  if (o.preset == "deep-mlp") std::printf("time:%.5f\n", s.h.train_seconds);  // as reference 2
  std::fflush(stdout);
  write_csvs(o, s.h);
  const std::size_t classes = static_cast<std::size_t>(o.classes);
  std::vector<std::vector<std::int64_t>> confusion(classes, std::vector<std::int64_t>(classes, 0));
  evaluate(*s.model, test_loader, bar, &confusion);
  std::vector<std::string> files = {o.out + "/metrics.csv", o.out + "/losses.csv"};
  if (!o.save.empty()) files.push_back(o.save);
  for (const std::string& f : write_pictures(o.out, o.preset, *s.model, s.test, s.h, confusion))
    files.push_back(f);
  std::fprintf(stderr, "wrote (metrics.csv: finished epochs; the pictures open in a browser):\n");
  for (const std::string& f : files) std::fprintf(stderr, "  %s\n", f.c_str());
  return stop == Stop::signal ? 128 + stop_signal() : 0;
}

}  // namespace mnist
