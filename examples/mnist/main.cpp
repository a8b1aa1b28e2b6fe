// SPDX-License-Identifier: MIT
// The MNIST example: trains reference 1 (bn-mlp) or reference 2 (deep-mlp) as their PyTorch
// programs (tests/reference/mnist_torch.py) do, prints reference 1's per-epoch line, and
// writes metrics, checkpoints and pictures. Usage: mnist --help. Guide: README.md here.
#include <backprop/backprop.hpp>

#include "distributed.hpp"  // MpiWorld, run_distributed() (a stub without MPI)
#include "report.hpp"       // what is printed and written at the end of an epoch and a run
#include "session.hpp"      // World, Session (data, model, optimizer, --load, --resume)

using namespace backprop;
using namespace mnist;

int train(Options o, World& world);

int main(int argc, char** argv) {
  Options options;
  try {
    if (!parse_options(argc, argv, options)) {  // --help
      std::fputs(usage_text(), stdout);
      return 0;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "mnist: %s\n", e.what());
    return 2;
  }
  try {
    if (options.distributed) return run_distributed(options, train);
    World alone;
    return train(options, alone);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist: error: %s\n", e.what());
    return 1;
  }
}

// Reference 1's training loop, one step per batch, for one process or one rank of an MPI
// job alike (where they differ, world.* says how). `at` is where the run is: epoch, step
// inside it and the sums so far, which a checkpoint records, so a run can stop anywhere
// (--max-steps, Ctrl-C) and --resume continues it bit for bit.
int train(Options o, World& world) {
  set_num_threads(world.threads(o));
  Session s(o, world);
  // Ctrl-C from here on stops after the current step, saves, and says how to resume. While the
  // data were loading it ended the program at once: there was nothing to save yet.
  catch_stop_signals();
  if (nothing_to_train(o, s, world)) return 0;
  Module<float>& model = world.parallel(*s.model);  // MPI: averages gradients in backward()
  std::unique_ptr<TrainLoader> train_loader = world.train_loader(s.train, o);
  check_last_batch(o, *train_loader, s.train);
  io::DataLoader<float> test_loader(s.test, o.test_batch_size);
  ProgressBar bar(world.root());
  Position& at = s.h.at;
  double* sums = &at.rank_sums[2 * static_cast<std::size_t>(world.rank())];  // loss, accuracy
  std::vector<float> losses;  // this run's steps of the current epoch
  std::int64_t steps_left = o.max_steps, steps_run = 0;
  double seconds = 0;
  Stop stop = Stop::none;

  for (; at.epoch < o.epochs; ++at.epoch, at.step = 0) {
    const Clock::time_point epoch_start = Clock::now();
    model.train();
    const double lr = s.schedule.set_epoch(at.epoch);
    train_loader->set_epoch(static_cast<std::uint64_t>(at.epoch));
    const Index batches = train_loader->num_batches();
    bar.start("epoch " + std::to_string(at.epoch), batches, at.step);
    for (; at.step < batches; ++at.step) {
      if (steps_left == 0) stop = Stop::max_steps;
      if (world.any(stop_signal() != 0)) stop = Stop::signal;
      if (stop != Stop::none) break;
      const io::Batch<float>& batch = train_loader->batch(at.step);
      s.optimizer.zero_grad(/*set_to_none=*/true);  // optimizer.zero_grad() (PyTorch 2 default)
      const Tensor<float>& out = model.forward(batch.images);     // out = model(img)
      const float loss = s.criterion.forward(out, batch.labels);  // criterion(out, label)
      if (!std::isfinite(loss)) throw diverged(s, loss, at, lr);
      model.backward(s.criterion.backward());  // loss.backward()
      s.optimizer.step();                      // optimizer.step()
      sums[0] += loss;
      sums[1] +=
          static_cast<double>(num_correct(out, batch.labels)) / static_cast<double>(batch.size());
      losses.push_back(loss);
      --steps_left, ++steps_run;
      bar.update(at.step + 1, batch.size() * world.size(), loss);
    }
    bar.finish();
    at.seconds += seconds_since(epoch_start);
    seconds += seconds_since(epoch_start);
    s.h.train_seconds += seconds_since(epoch_start);
    append_losses(world, losses, s.h);  // MPI: each step's mean over ranks
    if (stop != Stop::none) break;
    end_of_epoch(o, s, world, model, test_loader, bar, lr, batches);
  }

  world.after_training(*s.model, s.optimizer, steps_run, seconds);
  if (stop != Stop::none) save_stop_point(o, s, world, stop, train_loader->num_batches());
  return finish(o, s, world, test_loader, bar, stop);
}
