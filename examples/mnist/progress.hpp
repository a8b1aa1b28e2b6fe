// SPDX-License-Identifier: MIT
// What the example prints while it runs: a progress bar redrawn in place on a terminal (as
// wide as the terminal, never wider), plain lines now and then otherwise.
#pragma once

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace mnist {

/// Columns of the terminal on fd, 0 when fd is no terminal or one of unknown width (mpirun
/// hands its ranks a pseudo-terminal of width 0).
inline int known_terminal_columns(int fd) {
  winsize ws{};
  return ::ioctl(fd, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
}

/// Columns of the terminal on fd, else $COLUMNS, else 80.
inline int terminal_columns(int fd = STDERR_FILENO) {
  if (const int n = known_terminal_columns(fd)) return n;
  if (const char* c = std::getenv("COLUMNS")) {
    const int n = std::atoi(c);
    if (n > 0) return n;
  }
  return 80;
}

// "1:05" or "1:02:05".
inline std::string clock_text(double seconds) {
  const long s = seconds > 0 && seconds < 1e7 ? static_cast<long>(seconds + 0.5) : 0;
  char t[32];
  if (s >= 3600)
    std::snprintf(t, sizeof t, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(t, sizeof t, "%ld:%02ld", s / 60, s % 60);
  return t;
}

// "5.2k" for 5213.
inline std::string count_text(double v) {
  char t[32];
  if (v >= 1e6)
    std::snprintf(t, sizeof t, "%.1fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(t, sizeof t, "%.0fk", v / 1e3);
  else if (v >= 1e3)
    std::snprintf(t, sizeof t, "%.1fk", v / 1e3);
  else
    std::snprintf(t, sizeof t, "%.0f", v);
  return t;
}

/// On a terminal: "epoch 3 [#######......] 412/938 loss 0.2345 5.2k/s 0:12 left", fitted to
/// the terminal's width (read at every redraw, so resizing works; on a narrow one the bar, then
/// the rate, the time left and the loss are left out) and redrawn in place at most
/// ten times a second. Not on a terminal: a plain line every 10 s, so logs of long epochs
/// show progress and short runs stay quiet.
class ProgressBar {
 public:
  using Clock = std::chrono::steady_clock;

  explicit ProgressBar(bool enabled = true)
      : enabled_(enabled), tty_(::isatty(STDERR_FILENO) == 1) {}

  void start(const std::string& label, long total_batches, long done_batches = 0) {
    label_ = label;
    total_ = total_batches;
    first_ = done_batches;
    samples_ = 0;
    loss_sum_ = 0;
    loss_n_ = 0;
    begin_ = last_draw_ = Clock::now();
  }

  // Called after each batch; `loss` < 0 when there is none (the test pass).
  void update(long done_batches, long batch_samples, double loss = -1) {
    samples_ += batch_samples;
    if (loss >= 0) loss_sum_ += loss, ++loss_n_;
    if (!enabled_) return;
    const Clock::time_point now = Clock::now();
    const auto every = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000);
    if ((done_batches < total_ || !tty_) && now - last_draw_ < every) return;
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - begin_).count();
    const double rate = elapsed > 0 ? static_cast<double>(samples_) / elapsed : 0.0;
    const long done_here = done_batches - first_;
    const double left = done_here > 0 ? elapsed * static_cast<double>(total_ - done_batches) /
                                            static_cast<double>(done_here)
                                      : 0.0;
    std::string count = " " + std::to_string(done_batches) + "/" + std::to_string(total_), mean;
    if (loss_n_ > 0) {
      char l[32];
      std::snprintf(l, sizeof l, " loss %.4g", loss_sum_ / static_cast<double>(loss_n_));
      mean = l;
    }
    std::string speed = " " + count_text(rate) + "/s", eta = " " + clock_text(left) + " left";
    const auto tail = [&] { return count + mean + speed + eta; };
    if (!tty_) {
      std::fprintf(stderr, "%s:%s\n", label_.c_str(), tail().c_str());
      return;
    }
    // One column spare: a line exactly as wide as the terminal wraps on some terminals.
    const int columns = terminal_columns() - 1;
    // Too narrow: the least useful pieces go first, each whole.
    for (std::string* piece : {&speed, &eta, &mean})
      if (static_cast<int>(label_.size() + tail().size()) > columns) piece->clear();
    std::string line = label_;
    const int bar = columns - static_cast<int>(line.size() + tail().size()) - 3;
    if (bar >= 5) {
      const int filled = total_ > 0 ? static_cast<int>(bar * done_batches / total_) : bar;
      line += " [" + std::string(static_cast<std::size_t>(filled), '#') +
              std::string(static_cast<std::size_t>(bar - filled), '.') + "]";
    }
    line += tail();
    if (static_cast<int>(line.size()) > columns)  // narrower than the label and the count
      line.resize(static_cast<std::size_t>(std::max(columns, 0)));
    std::fprintf(stderr, "\r%s\033[K", line.c_str());  // \033[K: erase the rest of the line
    std::fflush(stderr);
    drawn_ = true;
  }

  // Clears the bar's line so that the next line starts clean.
  void finish() {
    if (!enabled_ || !tty_ || !drawn_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
  }

 private:
  bool enabled_, tty_, drawn_ = false;
  std::string label_;
  long total_ = 0, first_ = 0, samples_ = 0, loss_n_ = 0;
  double loss_sum_ = 0;
  Clock::time_point begin_, last_draw_;
};

}  // namespace mnist
