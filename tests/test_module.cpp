// SPDX-License-Identifier: MIT
// Module and Sequential: PyTorch state_dict names for both reference models, gradient
// accumulation over a whole model, zero_grad (to zero and to none), train/eval, a whole-model
// gradcheck.
#include <backprop/backprop.hpp>
#include <backprop/gradcheck.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "../examples/mnist/models.hpp"

using namespace backprop;

namespace {
std::vector<std::string> names(Module<float>& m) {
  std::vector<std::string> out;
  for (const auto& e : m.state_dict()) out.push_back(e.name);
  return out;
}
}  // namespace

TEST_CASE("Module: reference 1's state_dict keys are PyTorch's", "[module]") {
  mnist::Net<float> net;
  const std::vector<std::string> expected = {"layer1.0.weight",
                                             "layer1.0.bias",
                                             "layer1.1.weight",
                                             "layer1.1.bias",
                                             "layer1.1.running_mean",
                                             "layer1.1.running_var",
                                             "layer1.1.num_batches_tracked",
                                             "layer2.0.weight",
                                             "layer2.0.bias",
                                             "layer2.1.weight",
                                             "layer2.1.bias",
                                             "layer2.1.running_mean",
                                             "layer2.1.running_var",
                                             "layer2.1.num_batches_tracked",
                                             "layer3.0.weight",
                                             "layer3.0.bias"};
  CHECK(names(net) == expected);
  const auto params = net.parameters();
  REQUIRE(params.size() == 10);
  CHECK(params[0].value->shape() == Shape{300, 784});
  CHECK(params[0].grad == &static_cast<Linear<float>&>(net.layer1[0]).grad_weight);
}

TEST_CASE("Module: reference 2's state_dict keys are PyTorch's", "[module]") {
  Sequential<float> net = mnist::deep_mlp<float>();
  CHECK(names(net) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias",
                                               "4.weight", "4.bias", "6.weight", "6.bias",
                                               "8.weight", "8.bias"});
}

TEST_CASE("Module: a whole model accumulates, zero_grad clears", "[module]") {
  Generator gen(9);
  mnist::Net<double> net(6, 5, 4, 3);
  const Tensor<double> x = Tensor<double>::randn({7, 6}, gen);
  const Tensor<double> dy = Tensor<double>::randn({7, 3}, gen);
  net.forward(x);
  net.backward(dy);
  std::vector<Tensor<double>> once;
  for (const auto& p : net.parameters()) once.push_back(*p.grad);
  net.backward(dy);
  const auto params = net.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    INFO(params[i].name);
    CHECK((params[i].grad->vector() - 2 * once[i].vector()).norm() <=
          1e-12 * (1 + once[i].vector().norm()));
  }
  net.zero_grad();
  for (const auto& p : net.parameters()) CHECK(p.grad->vector().norm() == 0.0);
}

namespace {
// Linear, BatchNorm1d and LayerNorm: every kind of parameter gradient a backward writes.
Sequential<float> every_parameter_kind() {
  Generator gen(12);
  return Sequential<float>(Linear<float>(6, 5, true, gen), BatchNorm1d<float>(5), ReLU<float>(),
                           LayerNorm<float>(5), Linear<float>(5, 3, true, gen));
}
std::vector<Tensor<float>> grads(Module<float>& m) {
  std::vector<Tensor<float>> out;
  for (const auto& p : m.parameters()) out.push_back(*p.grad);
  return out;
}
}  // namespace

TEST_CASE("Module: zero_grad(true) sets gradients to none, backward writes them",
          "[module][set_to_none]") {
  Generator gen(13);
  // A batch of 20: dW's depth is above 16, so Linear's products take our kernel (in AVX2 and
  // AVX-512 builds), whose written and added forms are compared here.
  const Tensor<float> x = Tensor<float>::randn({20, 6}, gen);
  const Tensor<float> dy = Tensor<float>::randn({20, 3}, gen);
  Sequential<float> net = every_parameter_kind();
  net.forward(x);
  net.backward(dy);
  const std::vector<Tensor<float>> added = grads(net);  // zeros (construction) + g

  net.zero_grad(/*set_to_none=*/true);
  for (const auto& p : net.parameters()) {
    INFO(p.name);
    CHECK(p.grad->numel() == 0);
    CHECK(grad_is_none(*p.grad, *p.value));
  }
  net.forward(x);
  net.backward(dy);
  // Written, not added to: the values of 0 + g (a sanitizer build fills a resized tensor
  // with NaN, so a backward that added to the none gradient's leftovers fails here).
  CHECK(grads(net) == added);
  net.backward(dy);  // a gradient that is not none is added to
  const auto params = net.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    INFO(params[i].name);
    CHECK(params[i].grad->shape() == params[i].value->shape());
    CHECK(params[i].grad->vector() == (added[i].vector() + added[i].vector()).eval());
  }
}

TEST_CASE("Module: training with zero_grad(true) gives zero_grad()'s parameters exactly",
          "[module][set_to_none]") {
  Generator gen(14);
  const Tensor<float> x = Tensor<float>::randn({24, 6}, gen);  // dW's depth 24: our kernel
  Tensor<std::int64_t> labels({24});
  for (Index i = 0; i < 24; ++i) labels[i] = i % 3;
  for (const bool adam : {false, true}) {
    Sequential<float> zeroed = every_parameter_kind(), none = every_parameter_kind();
    std::unique_ptr<Optimizer<float>> opt_zeroed, opt_none;
    if (adam) {
      opt_zeroed = std::make_unique<Adam<float>>(zeroed.parameters(), 0.01);
      opt_none = std::make_unique<Adam<float>>(none.parameters(), 0.01);
    } else {
      opt_zeroed = std::make_unique<SGD<float>>(zeroed.parameters(), 0.1, 0.9);
      opt_none = std::make_unique<SGD<float>>(none.parameters(), 0.1, 0.9);
    }
    CrossEntropyLoss<float> criterion;
    for (int step = 0; step < 5; ++step) {
      opt_zeroed->zero_grad();
      criterion.forward(zeroed.forward(x), labels);
      zeroed.backward(criterion.backward());
      opt_zeroed->step();
      opt_none->zero_grad(/*set_to_none=*/true);
      criterion.forward(none.forward(x), labels);
      none.backward(criterion.backward());
      opt_none->step();
    }
    const auto a = zeroed.parameters(), b = none.parameters();
    for (std::size_t i = 0; i < a.size(); ++i) {
      INFO((adam ? "Adam " : "SGD ") << a[i].name);
      CHECK(*a[i].value == *b[i].value);
    }
  }
}

TEST_CASE("Optimizer: none gradients are skipped all together, or named when mixed",
          "[module][set_to_none]") {
  Generator gen(15);
  Linear<float> layer(4, 3, true, gen);
  const Tensor<float> x = Tensor<float>::randn({5, 4}, gen);
  const Tensor<float> dy = Tensor<float>::randn({5, 3}, gen);
  const Linear<float> start = layer;
  layer.zero_grad(true);  // an optimizer may be made over none gradients
  SGD<float> sgd(layer.parameters(), 0.1, 0.9);
  Adam<float> adam(layer.parameters(), 0.1);
  sgd.step();  // every gradient none: nothing changes, no state is created
  adam.step();
  CHECK(layer.weight == start.weight);
  CHECK(layer.bias == start.bias);
  CHECK(sgd.momentum_buffer().empty());
  // Adam's step count did not move: its first real step equals a fresh Adam's.
  Linear<float> fresh = start;
  Adam<float> fresh_adam(fresh.parameters(), 0.1);
  layer.forward(x);
  layer.backward(dy);
  fresh.forward(x);
  fresh.backward(dy);
  adam.step();
  fresh_adam.step();
  CHECK(layer.weight == fresh.weight);
  CHECK(layer.bias == fresh.bias);
  // A none gradient beside one that is not: an error naming the parameter.
  layer.grad_bias.resize({0});
  CHECK_THROWS_WITH(sgd.step(), Catch::Contains("SGD::step") && Catch::Contains("'bias'") &&
                                    Catch::Contains("has no gradient"));
  CHECK_THROWS_WITH(adam.step(), Catch::Contains("Adam::step") && Catch::Contains("'bias'"));
  // clip_grad_norm_ leaves a none gradient out, as PyTorch's.
  layer.zero_grad(true);
  CHECK(clip_grad_norm_(layer.parameters(), 1.0) == 0.0f);
  CHECK(layer.grad_weight.numel() == 0);
}

TEST_CASE("gradcheck: gradients that were none are checked, then left none",
          "[module][gradcheck][set_to_none]") {
  Generator gen(16);
  manual_seed(16);
  mnist::Net<double> net(6, 5, 4, 3);
  net.zero_grad(/*set_to_none=*/true);
  const GradcheckResult r = gradcheck(net, Tensor<double>::randn({7, 6}, gen));
  INFO(r.failures);
  CHECK(r.ok);
  for (const auto& p : net.parameters()) CHECK(grad_is_none(*p.grad, *p.value));
}

TEST_CASE("Module: gradcheck through the whole reference-1 model", "[module][gradcheck]") {
  Generator gen(10);
  manual_seed(10);
  mnist::Net<double> net(6, 5, 4, 3);
  const Tensor<double> x = Tensor<double>::randn({7, 6}, gen);
  GradcheckResult r = gradcheck(net, x);  // torch gradcheck tolerances
  INFO(r.failures);
  CHECK(r.ok);
  net.eval();
  r = gradcheck(net, x);
  INFO(r.failures);
  CHECK(r.ok);
}

TEST_CASE("Module: train()/eval() reach every submodule", "[module]") {
  mnist::Net<float> net;
  net.eval();
  CHECK_FALSE(net.layer1[1].is_training());
  CHECK_FALSE(net.layer3[0].is_training());
  net.train();
  CHECK(net.layer2[1].is_training());
}

TEST_CASE("Sequential: empty is the identity, push_back returns the stored module", "[module]") {
  Sequential<float> seq;
  const Tensor<float> x({1, 2}, {3, 4});
  CHECK(&seq.forward(x) == &x);
  Linear<float>& fc = seq.push_back(Linear<float>(2, 1));
  fc.weight.fill_(1);
  fc.bias.fill_(0);
  CHECK(seq.forward(x)[0] == 7.0f);
  CHECK(seq.size() == 1);
}

TEST_CASE("gradcheck: a wrong backward is caught and reported", "[module][gradcheck]") {
  // dL/dx off by 1% in one element: the checker must say so.
  struct Wrong : Module<double> {
    Tensor<double> y, dx;
    const Tensor<double>& forward(const Tensor<double>& x) override { return y = x; }
    const Tensor<double>& backward(const Tensor<double>& dy) override {
      dx = dy;
      dx[2] *= 1.01;
      return dx;
    }
  } wrong;
  Generator gen(11);
  const GradcheckResult r = gradcheck(wrong, Tensor<double>::randn({2, 3}, gen));
  CHECK_FALSE(r.ok);
  CHECK(r.failures.rfind("input[2]: analytic", 0) == 0);
}

TEST_CASE("gradcheck: restores running statistics and gradients", "[module][gradcheck]") {
  Generator gen(12);
  Sequential<double> net(Linear<double>(3, 2, true, gen), BatchNorm1d<double>(2));
  auto& bn = static_cast<BatchNorm1d<double>&>(net[1]);
  auto& fc = static_cast<Linear<double>&>(net[0]);
  fc.grad_weight.fill_(0.25);
  REQUIRE(gradcheck(net, Tensor<double>::randn({4, 3}, gen)).ok);
  CHECK(bn.running_mean.vector().norm() == 0.0);
  CHECK(bn.num_batches_tracked[0] == 0);
  CHECK(fc.grad_weight[0] == 0.25);
}

// set_input_requires_grad(false) on a model skips the first Linear's dL/dx = dy W (nothing
// reads the gradient of the data) and must leave every parameter gradient unchanged.
TEST_CASE("set_input_requires_grad(false): same parameter gradients, no dL/dx", "[module]") {
  auto grads = [](Module<double>& m) {
    std::vector<Tensor<double>> out;
    for (const Parameter<double>& p : m.parameters()) out.push_back(*p.grad);
    return out;
  };
  Generator gen(13);
  const Tensor<double> x = Tensor<double>::randn({6, 5}, gen);
  const Tensor<double> dy = Tensor<double>::randn({6, 3}, gen);
  manual_seed(5);
  mnist::Net<double> full(5, 4, 4, 3);
  manual_seed(5);
  mnist::Net<double> skip(5, 4, 4, 3);
  skip.set_input_requires_grad(false);
  CHECK(full.input_requires_grad());
  CHECK_FALSE(skip.input_requires_grad());
  CHECK_FALSE(skip.layer1.input_requires_grad());
  CHECK_FALSE(skip.layer1[0].input_requires_grad());
  CHECK(skip.layer1[1].input_requires_grad());  // only the first module of a container
  CHECK(skip.layer2.input_requires_grad());
  full.forward(x);
  skip.forward(x);
  CHECK(full.backward(dy).shape() == Shape{6, 5});
  CHECK(skip.backward(dy).numel() == 0);
  CHECK(grads(full) == grads(skip));  // bitwise: the same products, only dx skipped

  Sequential<double> seq(Linear<double>(5, 3, true, gen), ReLU<double>());
  seq.set_input_requires_grad(false);
  seq.forward(x);
  CHECK(seq.backward(dy).numel() == 0);
  CHECK(seq[0].input_requires_grad() == false);
  seq.set_input_requires_grad(true);
  seq.forward(x);
  CHECK(seq.backward(dy).shape() == Shape{6, 5});
}
