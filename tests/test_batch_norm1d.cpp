// SPDX-License-Identifier: MIT
// BatchNorm1d: gradient checks in train and eval mode (behind a Linear), running statistics,
// mode switching, misuse.
#include <backprop/batch_norm1d.hpp>
#include <backprop/gradcheck.hpp>
#include <backprop/linear.hpp>
#include <backprop/sequential.hpp>
#include <catch2/catch.hpp>
#include <cmath>

#include "test_helpers.hpp"

using namespace backprop;

// Tolerance for every gradcheck here: torch.autograd.gradcheck's double defaults,
// |analytic - numeric| <= 1e-5 + 1e-3 |numeric| with eps = 1e-6 (see GradcheckOptions).

namespace {
// A Linear in front, so BatchNorm's dx is checked through the chain rule as it is used, and
// gamma/beta that are not 1/0 so every term of the backward matters.
Sequential<double> linear_then_bn(Generator& gen, bool affine = true, bool track = true) {
  Sequential<double> net(Linear<double>(7, 3, true, gen),
                         BatchNorm1d<double>(3, 1e-5, 0.1, affine, track));
  if (affine) {
    auto& bn = static_cast<BatchNorm1d<double>&>(net[1]);
    bn.weight = Tensor<double>::rand({3}, gen, 0.5, 1.5);
    bn.bias = Tensor<double>::randn({3}, gen);
  }
  return net;
}
}  // namespace

TEST_CASE("BatchNorm1d: gradcheck in train mode (batch statistics)", "[batch_norm1d][gradcheck]") {
  Generator gen(5);
  for (bool affine : {true, false}) {
    Sequential<double> net = linear_then_bn(gen, affine);
    const Tensor<double> x = Tensor<double>::randn({5, 7}, gen, 0.5, 2.0);
    const GradcheckResult r = gradcheck(net, x);
    INFO("affine = " << affine << "\n" << r.failures);
    CHECK(r.ok);
    CHECK(r.checked == 5 * 7 + 3 * 7 + 3 + (affine ? 6 : 0));
  }
}

TEST_CASE("BatchNorm1d: gradcheck in eval mode (running statistics)", "[batch_norm1d][gradcheck]") {
  Generator gen(6);
  Sequential<double> net = linear_then_bn(gen);
  // a few training batches so running_mean/var are not 0/1
  for (int i = 0; i < 3; ++i) net.forward(Tensor<double>::randn({5, 7}, gen, 1.0, 3.0));
  net.eval();
  const Tensor<double> x = Tensor<double>::randn({5, 7}, gen);
  const GradcheckResult r = gradcheck(net, x);
  INFO(r.failures);
  CHECK(r.ok);
}

TEST_CASE("BatchNorm1d: gradcheck without running statistics", "[batch_norm1d][gradcheck]") {
  Generator gen(7);
  Sequential<double> net = linear_then_bn(gen, true, false);
  net.eval();  // still batch statistics: there are no running ones
  const GradcheckResult r = gradcheck(net, Tensor<double>::randn({5, 7}, gen));
  INFO(r.failures);
  CHECK(r.ok);
}

TEST_CASE("BatchNorm1d: train normalises with batch statistics, biased variance",
          "[batch_norm1d]") {
  BatchNorm1d<double> bn(2, /*eps=*/0.0 + 1e-12);
  const Tensor<double> x({4, 2}, {1, 10, 2, 20, 3, 30, 4, 40});
  const Tensor<double>& y = bn.forward(x);
  // column 0: mean 2.5, biased var 1.25 -> (1 - 2.5) / sqrt(1.25)
  CHECK(y.at({0, 0}) == Approx(-1.5 / std::sqrt(1.25)).epsilon(1e-9));
  CHECK(y.at({3, 1}) == Approx(15.0 / std::sqrt(125.0)).epsilon(1e-9));
  // running stats: momentum 0.1 weights the new value; the variance is unbiased (n-1)
  CHECK(bn.running_mean[0] == Approx(0.9 * 0 + 0.1 * 2.5));
  CHECK(bn.running_var[0] == Approx(0.9 * 1 + 0.1 * (5.0 / 3.0)));
  CHECK(bn.running_var[1] == Approx(0.9 * 1 + 0.1 * (500.0 / 3.0)));
  CHECK(bn.num_batches_tracked[0] == 1);
  bn.forward(x);
  CHECK(bn.num_batches_tracked[0] == 2);
  CHECK(bn.running_mean[0] == Approx(0.9 * 0.25 + 0.1 * 2.5));
}

TEST_CASE("BatchNorm1d: the variance stays accurate when the mean is large against the spread",
          "[batch_norm1d]") {
  // Four floats near 1000, a few hundredths apart (sigma about 0.011). E[x^2] - E[x]^2 in float
  // would cancel to noise: x^2 is near 1e6, where floats are 0.0625 apart, against a variance
  // near 1.2e-4. The two passes lose only the mean's rounding: three additions of partial sums
  // below 4096 (floats 2^-12 apart there) round by at most 3 * 2^-13 in all, so the mean is off
  // by e <= 3 * 2^-13 / 4; x - mean is then exact (Sterbenz), the variance is off by e^2 only,
  // and y = (x - mean) / sigma by at most e / sigma (about 0.008), plus float rounding.
  const Tensor<float> x({4, 1}, {999.985f, 999.995f, 1000.006f, 1000.013f});
  double mean = 0, var = 0;  // of the same floats, in double
  for (Index i = 0; i < 4; ++i) mean += double(x[i]) / 4;
  for (Index i = 0; i < 4; ++i) var += (double(x[i]) - mean) * (double(x[i]) - mean) / 4;
  const double bound = 3 * std::ldexp(1.0, -13) / 4 / std::sqrt(var) + 1e-5;
  BatchNorm1d<float> bn(1, /*eps=*/1e-12);
  const Tensor<float>& y = bn.forward(x);
  for (Index i = 0; i < 4; ++i) {
    INFO("row " << i);
    CHECK(double(y[i]) == Approx((double(x[i]) - mean) / std::sqrt(var)).margin(bound));
  }
}

TEST_CASE("BatchNorm1d: its own output as input, and its own gradient, give what copies give",
          "[batch_norm1d]") {
  // forward and backward return the module's buffers; feeding them back must read each value
  // before it is overwritten (the passes go row by row). Both modules do the same arithmetic in
  // the same order on the same values, so the results are compared bit for bit. (A bad order
  // in the forward corrupts x_hat, not y: the backward's checks catch it.)
  Generator gen(3);
  const Tensor<float> x = Tensor<float>::randn({5, 4}, gen, 2.0f, 3.0f);
  const Tensor<float> dy = Tensor<float>::randn({5, 4}, gen);
  BatchNorm1d<float> a(4), b(4);
  for (BatchNorm1d<float>* bn : {&a, &b}) {
    bn->weight = Tensor<float>::full({4}, 1.5f);
    bn->bias = Tensor<float>::full({4}, 0.5f);
  }
  const Tensor<float>& y_aliased = a.forward(a.forward(x));
  const Tensor<float> y1 = b.forward(x);  // a copy
  const Tensor<float> y_copied = b.forward(y1);
  CHECK(y_aliased.vector() == y_copied.vector());
  CHECK(a.running_mean.vector() == b.running_mean.vector());
  CHECK(a.running_var.vector() == b.running_var.vector());
  const Tensor<float>& g_aliased = a.backward(a.backward(dy));
  const Tensor<float> g1 = b.backward(dy);
  const Tensor<float> g_copied = b.backward(g1);
  CHECK(g_aliased.vector() == g_copied.vector());
  CHECK(a.grad_weight.vector() == b.grad_weight.vector());
}

TEST_CASE("BatchNorm1d: eval uses running statistics and leaves them alone", "[batch_norm1d]") {
  BatchNorm1d<double> bn(1);
  bn.running_mean[0] = 2.0;
  bn.running_var[0] = 4.0;
  bn.weight[0] = 3.0;
  bn.bias[0] = 1.0;
  bn.eval();
  CHECK_FALSE(bn.is_training());
  const Tensor<double>& y = bn.forward(Tensor<double>({1, 1}, {6.0}));  // a batch of 1 is fine
  CHECK(y[0] == Approx(3.0 * (6.0 - 2.0) / std::sqrt(4.0 + 1e-5) + 1.0));
  CHECK(bn.running_mean[0] == 2.0);
  CHECK(bn.num_batches_tracked[0] == 0);
  bn.train();
  CHECK(bn.is_training());
}

TEST_CASE("BatchNorm1d: train()/eval() reach modules nested in Sequential", "[batch_norm1d]") {
  Sequential<float> inner(BatchNorm1d<float>(2));
  Sequential<float> outer(Linear<float>(3, 2), std::move(inner));
  outer.eval();
  CHECK_FALSE(static_cast<Sequential<float>&>(outer[1])[0].is_training());
  outer.train();
  CHECK(static_cast<Sequential<float>&>(outer[1])[0].is_training());
}

TEST_CASE("BatchNorm1d: state_dict names and order match PyTorch", "[batch_norm1d]") {
  BatchNorm1d<float> bn(4);
  const auto entries = bn.state_dict();
  REQUIRE(entries.size() == 5);
  CHECK(entries[0].name == "weight");
  CHECK(entries[1].name == "bias");
  CHECK(entries[2].name == "running_mean");
  CHECK(entries[3].name == "running_var");
  CHECK(entries[4].name == "num_batches_tracked");
  CHECK(entries[4].grad == nullptr);
  CHECK(std::get<Tensor<std::int64_t>*>(entries[4].tensor)->dim() == 0);
}

TEST_CASE("BatchNorm1d: misuse throws naming the problem", "[batch_norm1d][errors]") {
  BatchNorm1d<float> bn(300);
  CHECK_THROWS_WITH(bn.forward(Tensor<float>({1, 300})),
                    "BatchNorm1d::forward: expected more than 1 value per channel when training, "
                    "got input of shape [1, 300]");
  CHECK_THROWS_WITH(bn.forward(Tensor<float>({8, 299})),
                    "BatchNorm1d::forward: x has 299 columns, expected num_features = 300");
  CHECK_THROWS_WITH(bn.forward(Tensor<float>({8, 300, 2})),
                    "BatchNorm1d::forward: x must be 2-D (N, num_features), got shape [8, 300, 2]");
  CHECK_THROWS_WITH(BatchNorm1d<float>(0), "BatchNorm1d: num_features must be positive, got 0");
  CHECK_THROWS_WITH(BatchNorm1d<float>(3, 0.0), "BatchNorm1d: eps must be positive, got 0");
  CHECK_THROWS_WITH(BatchNorm1d<float>(3, 1e-5, 1.5),
                    "BatchNorm1d: momentum must be in [0, 1], got 1.5");
  CHECK_THROWS_WITH(BatchNorm1d<float>(3).backward(Tensor<float>({2, 3})),
                    "BatchNorm1d::backward: called before forward, or after a forward under "
                    "NoGradGuard");
}

TEST_CASE("NoGradGuard: BatchNorm1d keeps no x_hat, gives the same bits, then refuses backward",
          "[batch_norm1d][no_grad]") {
  Generator gen(11);
  const Tensor<float> x1 = Tensor<float>::randn({33, 37}, gen, 1.0, 2.0);
  const Tensor<float> x2 = Tensor<float>::randn({33, 37}, gen, -1.0, 3.0);
  const char* refused =
      "BatchNorm1d::backward: called before forward, or after a forward under NoGradGuard";
  for (const bool affine : {true, false})
    for (const bool training : {true, false}) {
      INFO("affine " << affine << ", training " << training);
      BatchNorm1d<float> bn(37, 1e-5, 0.1, affine);
      bn.forward(x1);  // running statistics away from 0 and 1
      if (affine) {
        bn.weight = Tensor<float>::randn({37}, gen);
        bn.bias = Tensor<float>::randn({37}, gen);
      }
      bn.train(training);
      backprop_test::check_no_grad(bn, x1, x2, refused);
    }
}
