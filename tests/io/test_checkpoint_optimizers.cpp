// SPDX-License-Identifier: MIT
// Checkpoints of every optimizer through the Optimizer interface: a resumed run (fresh
// model, optimizer and generator loaded from the file) continues bit for bit, for SGD,
// Adam and AdamW with amsgrad; the state is saved under PyTorch's names.
#include <backprop/adam.hpp>
#include <backprop/io/checkpoint.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "../../examples/mnist/models.hpp"

using namespace backprop;
using namespace backprop::io;

namespace {

std::string tmp_path(const std::string& name) {
  std::filesystem::create_directories(BACKPROP_TEST_TMPDIR);
  return std::string(BACKPROP_TEST_TMPDIR) + "/" + name;
}

// Every byte of the model's state_dict: equal snapshots mean bitwise-identical models.
template <typename T>
std::vector<std::vector<unsigned char>> snapshot(Module<T>& m) {
  std::vector<std::vector<unsigned char>> out;
  for (const StateEntry<T>& e : m.state_dict())
    std::visit(
        [&](const auto* t) {
          const auto* p = reinterpret_cast<const unsigned char*>(t->data());
          out.emplace_back(p, p + t->numel() * static_cast<Index>(sizeof(*t->data())));
        },
        e.tensor);
  return out;
}

template <typename T>
void train_step(Module<T>& model, Optimizer<T>& optimizer, Generator& gen) {
  const Tensor<T> x = Tensor<T>::randn({8, 12}, gen);
  Tensor<std::int64_t> y({8});
  for (Index i = 0; i < 8; ++i) y[i] = static_cast<std::int64_t>(gen.below(5));
  CrossEntropyLoss<T> criterion;
  model.train();
  criterion.forward(model.forward(x), y);
  optimizer.zero_grad();
  model.backward(criterion.backward());
  optimizer.step();
}

using MakeOptimizer =
    std::function<std::unique_ptr<Optimizer<double>>(std::vector<Parameter<double>>)>;

// Trains k steps, saves, trains m more; then loads the file into a fresh model, optimizer
// (built with another lr and a different model init) and generator, and trains the same m
// steps: the two models must be equal to the last bit.
void check_exact_resume(const std::string& name, const MakeOptimizer& make) {
  INFO(name);
  const std::string path = tmp_path("resume_" + name + ".safetensors");
  manual_seed(5);
  mnist::Net<double> net(12, 9, 7, 5);
  std::unique_ptr<Optimizer<double>> opt = make(net.parameters());
  Generator gen(11);
  for (int i = 0; i < 4; ++i) train_step(net, *opt, gen);
  opt->set_lr(opt->lr() * 0.3);  // a scheduled lr, not a short decimal
  save_checkpoint(path, net, *opt, /*epoch=*/4, gen);
  for (int i = 0; i < 3; ++i) train_step(net, *opt, gen);
  const auto expected = snapshot(net);

  manual_seed(77);
  mnist::Net<double> resumed(12, 9, 7, 5);
  std::unique_ptr<Optimizer<double>> opt2 = make(resumed.parameters());
  opt2->set_lr(0.5);
  Generator gen2(0);
  REQUIRE(snapshot(resumed) != snapshot(net));
  const CheckpointState state = load_checkpoint(path, resumed, *opt2, gen2);
  CHECK(state.epoch == 4);
  CHECK(opt2->lr() == opt->lr());
  for (int i = 0; i < 3; ++i) train_step(resumed, *opt2, gen2);
  CHECK(snapshot(resumed) == expected);
}

}  // namespace

TEST_CASE("checkpoint: SGD, Adam and AdamW (amsgrad) resume bit for bit",
          "[checkpoint][optimizer]") {
  check_exact_resume("sgd", [](std::vector<Parameter<double>> p) {
    return std::make_unique<SGD<double>>(std::move(p), 0.1, 0.9, 0.1, 1e-3, false);
  });
  check_exact_resume("adam", [](std::vector<Parameter<double>> p) {
    return std::make_unique<Adam<double>>(std::move(p), 1e-2, std::pair{0.9, 0.99}, 1e-8, 1e-3);
  });
  check_exact_resume("adamw_amsgrad", [](std::vector<Parameter<double>> p) {
    return std::make_unique<AdamW<double>>(std::move(p), 1e-2, std::pair{0.8, 0.999}, 1e-8, 0.05,
                                           /*amsgrad=*/true);
  });
}

TEST_CASE("checkpoint: Adam's state under PyTorch's names, and the kind of optimizer is checked",
          "[checkpoint][optimizer]") {
  const std::string path = tmp_path("adam_names.safetensors");
  mnist::Net<float> net(12, 9, 7, 5);
  AdamW<float> opt(net.parameters(), 1e-3, {0.9, 0.999}, 1e-8, 1e-2, /*amsgrad=*/true);
  Generator gen(3);
  for (int i = 0; i < 2; ++i) train_step(net, opt, gen);
  save_checkpoint(path, net, opt, 1, gen);
  const SafetensorsFile file = read_safetensors(path);
  CHECK(file.metadata.at("optimizer") == "AdamW");
  CHECK(file.metadata.at("optimizer.step") == "2");
  CHECK(file.metadata.at("optimizer.beta2") == "0.999");
  CHECK(file.metadata.at("optimizer.amsgrad") == "1");
  for (const char* state : {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"})
    CHECK(file.find(std::string("optimizer.") + state + ".layer1.0.weight")->shape == Shape{9, 12});

  // An Adam or SGD cannot take an AdamW's state; a failed load changes nothing.
  mnist::Net<float> other(12, 9, 7, 5);
  Adam<float> adam(other.parameters());
  SGD<float> sgd(other.parameters(), 0.1, 0.9);
  CHECK_THROWS_WITH(load_checkpoint(path, other, adam, gen),
                    Catch::Contains("the checkpoint is of optimizer 'AdamW', not Adam"));
  CHECK_THROWS_WITH(load_checkpoint(path, other, sgd, gen), Catch::Contains("not SGD"));
  CHECK(adam.exp_avg().empty());
  CHECK(adam.step_count() == 0);

  // Loading a checkpoint saved before the first step empties the state again.
  AdamW<float> fresh(net.parameters(), 1e-3, {0.9, 0.999}, 1e-8, 1e-2, true);
  save_checkpoint(path, net, fresh, 0, gen);
  load_checkpoint(path, net, opt, gen);
  CHECK(opt.step_count() == 0);
  CHECK(opt.exp_avg().empty());
  CHECK(opt.max_exp_avg_sq().empty());
}

TEST_CASE("checkpoint: an SGD checkpoint written before the Optimizer interface still loads",
          "[checkpoint][optimizer]") {
  // tests/fuzz/corpus/safetensors/valid-checkpoint was written by the SGD-only
  // save_checkpoint (commit 40bbd91), from mnist::Net<float>(12, 9, 7, 5) and SGD(0.01, 0.5)
  // after one step (tests/fuzz/replay.cpp).
  const std::string old_path = (std::filesystem::path(__FILE__).parent_path().parent_path() /
                                "fuzz" / "corpus" / "safetensors" / "valid-checkpoint")
                                   .string();
  mnist::Net<float> net(12, 9, 7, 5);
  SGD<float> opt(net.parameters(), 0.5, 0.5);
  Generator gen(0);
  const CheckpointState state = load_checkpoint(old_path, net, opt, gen);
  CHECK(state.epoch == 1);
  CHECK(opt.lr() == 0.01);
  REQUIRE(opt.momentum_buffer().size() == opt.parameters().size());
  // Saved again, every tensor has the same name and bytes as in the old file.
  const std::string new_path = tmp_path("resaved_old.safetensors");
  save_checkpoint(new_path, net, opt, state.epoch, gen);
  const SafetensorsFile old_file = read_safetensors(old_path),
                        new_file = read_safetensors(new_path);
  REQUIRE(old_file.tensors.size() == new_file.tensors.size());
  for (const SafetensorsTensor& t : old_file.tensors) {
    INFO(t.name);
    const SafetensorsTensor* u = new_file.find(t.name);
    REQUIRE(u != nullptr);
    CHECK(u->data == t.data);
  }
  CHECK(new_file.metadata.at("optimizer") == "SGD");
  CHECK(new_file.metadata.at("optimizer.momentum") == old_file.metadata.at("optimizer.momentum"));
}
