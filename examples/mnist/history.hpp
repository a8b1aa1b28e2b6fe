// SPDX-License-Identifier: MIT
// What a run of the MNIST example accumulates besides the model and optimizer: the metrics of
// every finished epoch, every step's loss, and where in the current epoch it is. It rides in
// the checkpoint's metadata, so that a resumed run continues, files and pictures included.
#pragma once

#include <backprop/io/safetensors.hpp>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mnist {

// One row of metrics.csv, and of the printed line. test_acc is the mean over test batches
// of each batch's accuracy, as both references compute it (the last, smaller batch weighs as
// much as a full one); test_acc_per_sample is correct predictions / test samples.
struct EpochMetrics {
  std::int64_t epoch;
  double lr, train_loss, train_acc, test_loss, test_acc, test_acc_per_sample, seconds;
};

// Where the run is: epoch `epoch` (epochs before it are finished), `step` of its steps done,
// with their summed loss and accuracy on each rank (one pair per rank under MPI, kept
// apart so that a resumed run adds in the same order as an uninterrupted one).
struct Position {
  std::int64_t epoch = 0, step = 0;
  std::vector<double> rank_sums;  // rank r: loss sum at [2r], accuracy sum at [2r + 1]
  double seconds = 0;             // wall time spent in this epoch so far
};

struct History {
  std::vector<EpochMetrics> epochs;
  std::vector<float> losses;  // every training step's loss
  double train_seconds = 0;
  std::uint64_t seed = 0;  // of the shuffles
  Position at;             // where the run is now (to_metadata takes the position to record)

  backprop::io::Metadata to_metadata(const Position& where) const {
    std::ostringstream e, l, t, p;
    e.precision(17), l.precision(9), t.precision(17), p.precision(17);
    for (const EpochMetrics& m : epochs)
      e << m.epoch << ',' << m.lr << ',' << m.train_loss << ',' << m.train_acc << ',' << m.test_loss
        << ',' << m.test_acc << ',' << m.seconds << ',' << m.test_acc_per_sample << ';';
    for (float v : losses) l << v << ',';
    t << train_seconds;
    p << where.step << ',' << where.seconds;
    for (double v : where.rank_sums) p << ',' << v;
    return {{"history.epochs", e.str()},
            {"history.losses", l.str()},
            {"history.train_seconds", t.str()},
            {"history.position", p.str()},
            {"seed", std::to_string(seed)}};
  }

  // `epoch` is the checkpoint's count of finished epochs.
  static History from_metadata(const backprop::io::Metadata& meta, std::int64_t epoch,
                               const std::string& path) {
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
      char c[7];
      std::istringstream r(row);
      if (!(r >> m.epoch >> c[0] >> m.lr >> c[1] >> m.train_loss >> c[2] >> m.train_acc >> c[3] >>
            m.test_loss >> c[4] >> m.test_acc >> c[5] >> m.seconds))
        throw std::runtime_error(path + ": metadata 'history.epochs' is malformed");
      if (!(r >> c[6] >> m.test_acc_per_sample)) m.test_acc_per_sample = m.test_acc;  // older files
      h.epochs.push_back(m);
    }
    try {
      std::string v;
      while (std::getline(l, v, ',')) h.losses.push_back(std::stof(v));
      h.train_seconds = std::stod(get("history.train_seconds"));
      h.seed = std::stoull(get("seed"));
      h.at.epoch = epoch;
      const auto pos = meta.find("history.position");  // absent: at an epoch's start
      if (pos != meta.end()) {
        std::istringstream p(pos->second);
        std::getline(p, v, ',');
        h.at.step = std::stoll(v);
        std::getline(p, v, ',');
        h.at.seconds = std::stod(v);
        while (std::getline(p, v, ',')) h.at.rank_sums.push_back(std::stod(v));
      }
    } catch (const std::logic_error&) {  // stof/stod/stoull: not a number
      throw std::runtime_error(path +
                               ": metadata 'history.losses', 'history.train_seconds', "
                               "'history.position' or 'seed' is malformed");
    }
    return h;
  }
};

inline void write_metrics_csv(const std::string& path, const History& h) {
  std::ostringstream o;
  o << "epoch,lr,train_loss,train_acc,test_loss,test_acc,test_acc_per_sample,seconds\n";
  for (const EpochMetrics& m : h.epochs) {
    char line[256];
    std::snprintf(line, sizeof line, "%lld,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f\n",
                  static_cast<long long>(m.epoch), m.lr, m.train_loss, m.train_acc, m.test_loss,
                  m.test_acc, m.test_acc_per_sample, m.seconds);
    o << line;
  }
  backprop::io::write_file_atomic(path, o.str());
}

inline void write_losses_csv(const std::string& path, const History& h) {
  std::ostringstream o;
  o.precision(9);
  o << "iteration,loss\n";
  for (std::size_t i = 0; i < h.losses.size(); ++i) o << i << ',' << h.losses[i] << '\n';
  backprop::io::write_file_atomic(path, o.str());
}

}  // namespace mnist
