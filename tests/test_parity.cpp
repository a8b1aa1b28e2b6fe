// SPDX-License-Identifier: MIT
// Parity with PyTorch: the library against values torch 1.13 computed (tests/fixtures/parity_*.hpp,
// written by tests/reference/make_fixtures.py), in double and in float.
#include <backprop/backprop.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "../examples/mnist/models.hpp"
#include "fixtures/parity_net.hpp"
#include "fixtures/parity_relu_ce.hpp"
#include "fixtures/parity_sgd.hpp"
#include "fixtures/parity_trajectory.hpp"
#include "test_helpers.hpp"

namespace fx = backprop_fixtures;
using backprop::CrossEntropyLoss;
using backprop::Index;
using backprop::Linear;
using backprop::Module;
using backprop::Reduction;
using backprop::ReLU;
using backprop::SGD;
using backprop::Shape;
using backprop::StateEntry;
using backprop::StepLR;
using backprop::Tensor;
using backprop_test::check_close;

namespace {

// Every check compares every element: it passes when |actual - expected| <= atol + rtol *
// |expected| (check_close), and prints the first mismatch and the max abs/rel errors.
//
// double: the fixtures are torch's float64 results, so the two sides differ only by
//   rounding in a different order of operations (Eigen's blocked products vs ATen's kernels,
//   Welford vs two-pass variance, FMA or not): a few ulps per operation, grown by the depth
//   of the computation. rtol 1e-10 leaves ~5 decimal digits of headroom above that and is
//   still far finer than any real formula difference (a biased running_var, a swapped
//   momentum, dampening or weight decay left out of the buffer: each fails here by orders of
//   magnitude).
//   atol 1e-12 covers values that are zero up to rounding, e.g. dL/d(layer1.0.bias), which
//   BatchNorm makes exactly 0 in exact arithmetic (it removes the batch mean of its input).
//   Measured (GCC 12, -O3 -march=native): max abs error 5.7e-14 (on a loss of 334, rel
//   1.7e-16), otherwise <= 5.6e-16; max rel error 6.6e-15 on entries above 1e-2; the
//   largest error / tolerance ratio is 2.4e-4.
// float: the fixtures are torch's float32 results from the same float32-exact inputs. Float
//   rounding (eps 6e-8) in a different order, amplified by BatchNorm's 1/std with batches of
//   8, gives relative differences up to a few 1e-6; rtol 1e-5 allows for that, and atol 1e-6
//   covers near-zero entries whose absolute error is set by the size of the terms that
//   cancel. Measured: max rel error 3.2e-6 on entries above 1e-2, max abs error 2.4e-7
//   (3.1e-5 on the loss of 334, rel 9e-8); the largest error / tolerance ratio is 0.084.
//   The 60-step trajectory shows no drift (max rel error 5.2e-7 on entries above 1e-2 in
//   the state after step 60), so it keeps the same tolerance.
template <typename T>
struct Tol;
template <>
struct Tol<double> {
  static constexpr double rtol = 1e-10, atol = 1e-12;
};
template <>
struct Tol<float> {
  static constexpr double rtol = 1e-5, atol = 1e-6;
};

template <typename T>
const char* type_name() {
  return std::is_same_v<T, double> ? "double" : "float";
}

Shape shape_of(const fx::Array& a) { return Shape(a.shape.begin(), a.shape.end()); }

// The fixture values as a Tensor<T>. The inputs and starting weights are float32 values, so
// the conversion is exact in both precisions.
template <typename T>
Tensor<T> to_tensor(const fx::Array& a) {
  return Tensor<T>(shape_of(a), std::vector<T>(a.values.begin(), a.values.end()));
}

Tensor<std::int64_t> to_labels(const std::vector<std::int64_t>& t) {
  return Tensor<std::int64_t>({static_cast<Index>(t.size())}, t);
}

// A scalar through check_close, so that it reports like the tensors.
template <typename T>
void check_scalar(T actual, double expected, double rtol, double atol, const std::string& what) {
  check_close(Tensor<T>(Shape{}, std::vector<T>{actual}), std::vector<double>{expected}, Shape{},
              rtol, atol, what);
}

// The state_dict keys must be exactly PyTorch's, in PyTorch's order.
template <typename T>
void require_same_keys(Module<T>& model, const std::vector<fx::NamedArray>& expected) {
  const std::vector<StateEntry<T>> state = model.state_dict();
  REQUIRE(state.size() == expected.size());
  for (std::size_t i = 0; i < state.size(); ++i) REQUIRE(state[i].name == expected[i].name);
}

// Copies a PyTorch state_dict into the model, as model.load_state_dict(...).
template <typename T>
void load_state(Module<T>& model, const std::vector<fx::NamedArray>& state) {
  require_same_keys(model, state);
  std::vector<StateEntry<T>> entries = model.state_dict();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const fx::Array& a = state[i].array;
    std::visit(
        [&](auto* tensor) {
          using V = typename std::decay_t<decltype(*tensor)>::Scalar;
          INFO(state[i].name);
          REQUIRE(tensor->shape() == shape_of(a));
          for (Index k = 0; k < tensor->numel(); ++k)
            (*tensor)[k] = static_cast<V>(a.values[static_cast<std::size_t>(k)]);
        },
        entries[i].tensor);
  }
}

// Compares every parameter and buffer with a PyTorch state_dict; num_batches_tracked exactly.
template <typename T>
void check_state(Module<T>& model, const std::vector<fx::NamedArray>& expected, double rtol,
                 double atol, const std::string& what) {
  require_same_keys(model, expected);
  std::vector<StateEntry<T>> entries = model.state_dict();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const fx::Array& a = expected[i].array;
    const std::string name = what + " " + expected[i].name;
    if (auto* counter = std::get_if<Tensor<std::int64_t>*>(&entries[i].tensor)) {
      // an integer count: no tolerance
      check_close(**counter, a.values, shape_of(a), 0.0, 0.0, name);
    } else {
      check_close(*std::get<Tensor<T>*>(entries[i].tensor), a.values, shape_of(a), rtol, atol,
                  name);
    }
  }
}

// Compares every parameter gradient with PyTorch's named_parameters() gradients.
template <typename T>
void check_grads(Module<T>& model, const std::vector<fx::NamedArray>& expected, double rtol,
                 double atol, const std::string& what) {
  const std::vector<backprop::Parameter<T>> params = model.parameters();
  REQUIRE(params.size() == expected.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    REQUIRE(params[i].name == expected[i].name);
    check_close(*params[i].grad, expected[i].array.values, shape_of(expected[i].array), rtol, atol,
                what + " grad " + params[i].name);
  }
}

template <typename T>
const fx::NetCase& net_ref() {
  if constexpr (std::is_same_v<T, double>)
    return fx::net::f64;
  else
    return fx::net::f32;
}
template <typename T>
const fx::TrajectoryCase& trajectory_ref() {
  if constexpr (std::is_same_v<T, double>)
    return fx::trajectory::f64;
  else
    return fx::trajectory::f32;
}
template <typename T>
const std::vector<fx::SgdCase>& sgd_ref() {
  if constexpr (std::is_same_v<T, double>)
    return fx::sgd::f64;
  else
    return fx::sgd::f32;
}
template <typename T>
const fx::ReluCeCase& relu_ce_ref() {
  if constexpr (std::is_same_v<T, double>)
    return fx::relu_ce::f64;
  else
    return fx::relu_ce::f32;
}

// Reference 1's Net at the fixture's small size, with the fixture's starting state.
template <typename T>
struct SmallNet {
  mnist::Net<T> model{fx::net::in_dim, fx::net::n_hidden_1, fx::net::n_hidden_2, fx::net::out_dim};
  SmallNet() { load_state(model, fx::net::initial_state); }
};

}  // namespace

TEMPLATE_TEST_CASE("Parity: Net forward, loss and every gradient in train mode", "[parity]", double,
                   float) {
  using T = TestType;
  const fx::NetCase& ref = net_ref<T>();
  const std::string what = std::string(type_name<T>()) + " train step:";
  SmallNet<T> net;
  CrossEntropyLoss<T> criterion;
  REQUIRE(net.model.is_training());

  const Tensor<T> x = to_tensor<T>(fx::net::train_x[0]);
  const Tensor<T> logits = net.model.forward(x);
  const T loss = criterion.forward(logits, to_labels(fx::net::train_target[0]));
  net.model.zero_grad();
  const Tensor<T> grad_input = net.model.backward(criterion.backward());

  // Tolerances: Tol<T> (see its comment); every element of every tensor is compared.
  check_close(logits, ref.logits.values, shape_of(ref.logits), Tol<T>::rtol, Tol<T>::atol,
              what + " logits");
  check_scalar(loss, ref.loss, Tol<T>::rtol, Tol<T>::atol, what + " loss");
  check_close(grad_input, ref.grad_input.values, shape_of(ref.grad_input), Tol<T>::rtol,
              Tol<T>::atol, what + " dL/dx");
  check_grads(net.model, ref.grads, Tol<T>::rtol, Tol<T>::atol, what);
}

TEMPLATE_TEST_CASE("Parity: Net running stats, parameters and eval mode after 5 SGD steps",
                   "[parity]", double, float) {
  using T = TestType;
  const fx::NetCase& ref = net_ref<T>();
  const std::string what = std::string(type_name<T>()) + " after 5 steps:";
  SmallNet<T> net;
  CrossEntropyLoss<T> criterion;
  SGD<T> optimizer(net.model.parameters(), fx::net::lr, fx::net::momentum);

  net.model.train();
  for (std::size_t k = 0; k < static_cast<std::size_t>(fx::net::num_steps); ++k) {
    optimizer.zero_grad();
    const T loss = criterion.forward(net.model.forward(to_tensor<T>(fx::net::train_x[k])),
                                     to_labels(fx::net::train_target[k]));
    net.model.backward(criterion.backward());
    optimizer.step();
    // Tolerance Tol<T>: each loss is computed before its step's update.
    check_scalar(loss, ref.step_losses[k], Tol<T>::rtol, Tol<T>::atol,
                 what + " loss of step " + std::to_string(k));
  }
  // running_mean/running_var (Tol<T>), num_batches_tracked == 5 exactly, and every parameter
  // after 5 updates (Tol<T>: five steps of lr 0.01 add no visible error growth).
  check_state(net.model, ref.state_after_steps, Tol<T>::rtol, Tol<T>::atol, what);

  // Eval mode: BatchNorm uses the running stats, and its backward treats them as constants.
  net.model.eval();
  optimizer.zero_grad();
  const Tensor<T> logits = net.model.forward(to_tensor<T>(fx::net::eval_x));
  const T loss = criterion.forward(logits, to_labels(fx::net::eval_target));
  const Tensor<T> grad_input = net.model.backward(criterion.backward());
  check_close(logits, ref.eval_logits.values, shape_of(ref.eval_logits), Tol<T>::rtol, Tol<T>::atol,
              what + " eval logits");
  check_scalar(loss, ref.eval_loss, Tol<T>::rtol, Tol<T>::atol, what + " eval loss");
  check_close(grad_input, ref.eval_grad_input.values, shape_of(ref.eval_grad_input), Tol<T>::rtol,
              Tol<T>::atol, what + " eval dL/dx");
  check_grads(net.model, ref.eval_grads, Tol<T>::rtol, Tol<T>::atol, what + " eval");
  // Eval mode leaves the running stats and the counter alone.
  check_state(net.model, ref.state_after_steps, Tol<T>::rtol, Tol<T>::atol, what + " after eval");
}

TEMPLATE_TEST_CASE("Parity: Net trajectory over 60 SGD steps with reference 1's lr schedule",
                   "[parity]", double, float) {
  using T = TestType;
  const fx::TrajectoryCase& ref = trajectory_ref<T>();
  const std::string what = std::string(type_name<T>()) + " trajectory:";
  SmallNet<T> net;
  CrossEntropyLoss<T> criterion;
  SGD<T> optimizer(net.model.parameters(), fx::net::lr, fx::net::momentum);
  // Reference 1: "if epoch % 5 == 0: lr *= 0.1" at the start of each epoch, from epoch 0.
  StepLR<SGD<T>> schedule(optimizer, 5, 0.1, /*decay_at_start=*/true);

  REQUIRE(ref.losses.size() == static_cast<std::size_t>(fx::trajectory::num_steps));
  std::size_t sample = 0;
  for (Index step = 0; step < fx::trajectory::num_steps; ++step) {
    const std::size_t s = static_cast<std::size_t>(step);
    if (step % fx::trajectory::steps_per_epoch == 0) {
      net.model.train();
      schedule.set_epoch(step / fx::trajectory::steps_per_epoch);
    }
    // The lr is a double computed by the same successive multiplications: exactly equal.
    CHECK(optimizer.lr() == ref.lrs[s]);
    const T loss = criterion.forward(net.model.forward(to_tensor<T>(fx::trajectory::train_x[s])),
                                     to_labels(fx::trajectory::train_target[s]));
    optimizer.zero_grad();
    net.model.backward(criterion.backward());
    optimizer.step();
    // Tolerance Tol<T>, also after many steps: the lr (1e-3, then 1e-4) keeps each update
    // small, so rounding differences do not compound visibly (measured below Tol<T>).
    check_scalar(loss, ref.losses[s], Tol<T>::rtol, Tol<T>::atol,
                 what + " loss of step " + std::to_string(step));
    if ((step + 1) % fx::trajectory::sample_every == 0) {
      REQUIRE(sample < ref.samples.size());
      check_state(net.model, ref.samples[sample], Tol<T>::rtol, Tol<T>::atol,
                  what + " state after step " + std::to_string(step + 1));
      ++sample;
    }
  }
  CHECK(sample == ref.samples.size());
}

TEMPLATE_TEST_CASE("Parity: SGD weight_decay, dampening, nesterov and momentum 0 on a Linear",
                   "[parity]", double, float) {
  using T = TestType;
  for (const fx::SgdCase& ref : sgd_ref<T>()) {
    const std::string what = std::string(type_name<T>()) + " SGD " + ref.name + ":";
    Linear<T> linear(fx::sgd::in_features, fx::sgd::out_features);
    linear.weight = to_tensor<T>(fx::sgd::initial_weight);
    linear.bias = to_tensor<T>(fx::sgd::initial_bias);
    CrossEntropyLoss<T> criterion;
    SGD<T> optimizer(linear.parameters(), ref.lr, ref.momentum, ref.dampening, ref.weight_decay,
                     ref.nesterov);
    const Index out = fx::sgd::out_features, in = fx::sgd::in_features;
    for (Index step = 0; step < fx::sgd::num_steps; ++step) {
      const std::size_t s = static_cast<std::size_t>(step);
      optimizer.zero_grad();
      const T loss = criterion.forward(linear.forward(to_tensor<T>(fx::sgd::train_x[s])),
                                       to_labels(fx::sgd::train_target[s]));
      linear.backward(criterion.backward());
      optimizer.step();
      const std::string at = what + " step " + std::to_string(step);
      // Tolerance Tol<T>: one small layer, ten steps; nothing amplifies rounding here.
      check_scalar(loss, ref.losses[s], Tol<T>::rtol, Tol<T>::atol, at + " loss");
      const auto w0 = ref.weights.values.begin() + step * out * in;
      const auto b0 = ref.biases.values.begin() + step * out;
      check_close(linear.weight, std::vector<double>(w0, w0 + out * in), Shape{out, in},
                  Tol<T>::rtol, Tol<T>::atol, at + " weight");
      check_close(linear.bias, std::vector<double>(b0, b0 + out), Shape{out}, Tol<T>::rtol,
                  Tol<T>::atol, at + " bias");
    }
  }
}

TEMPLATE_TEST_CASE("Parity: ReLU and CrossEntropyLoss with logits of +-1000", "[parity]", double,
                   float) {
  using T = TestType;
  const fx::ReluCeCase& ref = relu_ce_ref<T>();
  const std::string what = std::string(type_name<T>()) + ":";

  ReLU<T> relu;
  const Tensor<T> y = relu.forward(to_tensor<T>(fx::relu_ce::relu_x));
  const Tensor<T> dx = relu.backward(to_tensor<T>(fx::relu_ce::relu_dy));
  // ReLU selects or zeroes, it never rounds: exact, including 0 gradient at x = 0 and the
  // gradient passed at x = 1e-30.
  check_close(y, ref.relu_y.values, shape_of(ref.relu_y), 0.0, 0.0, what + " relu y");
  check_close(dx, ref.relu_dx.values, shape_of(ref.relu_dx), 0.0, 0.0, what + " relu dx");

  const Tensor<T> logits = to_tensor<T>(fx::relu_ce::ce_x);
  const Tensor<std::int64_t> target = to_labels(fx::relu_ce::ce_target);
  {
    CrossEntropyLoss<T> criterion(Reduction::Mean);
    const T loss = criterion.forward(logits, target);
    const Tensor<T> grad = criterion.backward();
    // Tolerance Tol<T>: log-sum-exp of shifted logits; a naive exp(1000) would give inf/nan
    // and exp(-1000) underflow would give log(0), both far outside any tolerance.
    REQUIRE(std::isfinite(loss));
    check_scalar(loss, ref.ce_mean_loss, Tol<T>::rtol, Tol<T>::atol, what + " CE mean loss");
    check_close(grad, ref.ce_mean_dx.values, shape_of(ref.ce_mean_dx), Tol<T>::rtol, Tol<T>::atol,
                what + " CE mean dx");
  }
  {
    CrossEntropyLoss<T> criterion(Reduction::Sum);
    const T loss = criterion.forward(logits, target);
    const Tensor<T> grad = criterion.backward(T(fx::relu_ce::ce_sum_grad_output));
    REQUIRE(std::isfinite(loss));
    check_scalar(loss, ref.ce_sum_loss, Tol<T>::rtol, Tol<T>::atol, what + " CE sum loss");
    check_close(grad, ref.ce_sum_dx.values, shape_of(ref.ce_sum_dx), Tol<T>::rtol, Tol<T>::atol,
                what + " CE sum dx (grad_output 2.5)");
  }
}
