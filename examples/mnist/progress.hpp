// SPDX-License-Identifier: MIT
// A progress bar on standard error: batches, samples/s and ETA; silent when not a terminal.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace mnist {

class ProgressBar {
 public:
  using Clock = std::chrono::steady_clock;

  explicit ProgressBar(bool enabled = ::isatty(STDERR_FILENO) == 1) : enabled_(enabled) {}

  void start(const std::string& label, long total_batches) {
    label_ = label;
    total_ = total_batches;
    samples_ = 0;
    begin_ = last_draw_ = Clock::now();
  }

  // Called after each batch; redraws at most ten times a second.
  void update(long done_batches, long batch_samples) {
    samples_ += batch_samples;
    if (!enabled_) return;
    const Clock::time_point now = Clock::now();
    if (done_batches < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - begin_).count();
    const double rate = elapsed > 0 ? static_cast<double>(samples_) / elapsed : 0.0;
    const double eta = done_batches > 0
                           ? elapsed * static_cast<double>(total_ - done_batches) / done_batches
                           : 0.0;
    constexpr int width = 30;
    const int filled = total_ > 0 ? static_cast<int>(width * done_batches / total_) : width;
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%-10s [%s] %ld/%ld batches  %8.0f samples/s  ETA %5.1fs ",
                 label_.c_str(), bar.c_str(), done_batches, total_, rate, eta);
    std::fflush(stderr);
  }

  // Clears the bar's line so that the next stdout line starts clean.
  void finish() {
    if (!enabled_) return;
    std::fprintf(stderr, "\r%*s\r", 100, "");
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  std::string label_;
  long total_ = 0, samples_ = 0;
  Clock::time_point begin_, last_draw_;
};

}  // namespace mnist
