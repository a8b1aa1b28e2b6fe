// SPDX-License-Identifier: MIT
// BCEWithLogitsLoss: gradient check under every reduction, with pos_weight and with large
// logits; stability; values; misuse. (PyTorch parity: test_parity_layers.cpp.)
#include <backprop/bce_with_logits_loss.hpp>
#include <backprop/gradcheck.hpp>
#include <catch2/catch.hpp>
#include <cmath>

using namespace backprop;

TEST_CASE("BCEWithLogitsLoss: gradcheck, every reduction, with and without pos_weight",
          "[bce_with_logits_loss][gradcheck]") {
  Generator gen(52);
  const Tensor<double> x = Tensor<double>::randn({5, 3}, gen, 0.0, 3.0);
  const Tensor<double> t = Tensor<double>::rand({5, 3}, gen);  // probabilities, not only 0/1
  const Tensor<double> pos_weight({3}, {0.5, 2.0, 3.5});
  for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    for (bool weighted : {false, true}) {
      BCEWithLogitsLoss<double> criterion(reduction, weighted ? pos_weight : Tensor<double>());
      const GradcheckResult r = gradcheck(criterion, x, t);  // torch gradcheck tolerances
      INFO("reduction " << int(reduction) << ", pos_weight " << weighted << "\n" << r.failures);
      CHECK(r.ok);
      CHECK(r.checked == 15);
    }
  }
}

TEST_CASE("BCEWithLogitsLoss: gradcheck with logits of +-30 and +-500",
          "[bce_with_logits_loss][gradcheck]") {
  const Tensor<double> x({2, 4}, {30, -30, 500, -500, 35, -35, 20, -20});
  const Tensor<double> t({2, 4}, {0, 1, 0.25, 0.75, 1, 0, 0.5, 0.5});
  for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    BCEWithLogitsLoss<double> criterion(reduction, Tensor<double>({4}, {1.5, 0.5, 2, 3}));
    const GradcheckResult r = gradcheck(criterion, x, t);
    INFO(r.failures);
    CHECK(r.ok);
  }
}

TEST_CASE("BCEWithLogitsLoss: stable values for huge logits", "[bce_with_logits_loss]") {
  BCEWithLogitsLoss<float> none(Reduction::None);
  const Tensor<float> x({1, 4}, {1000.0f, -1000.0f, 1000.0f, 40.0f});
  const Tensor<float> t({1, 4}, {1.0f, 0.0f, 0.0f, 1.0f});
  const Tensor<float> loss = none.forward_tensor(x, t);
  CHECK(loss[0] == 0.0f);  // log(1 + e^-1000)
  CHECK(loss[1] == 0.0f);
  CHECK(loss[2] == 1000.0f);  // the wrong side: the loss is the logit, not inf
  CHECK(loss[3] == Approx(std::exp(-40.0)).epsilon(1e-6));  // log1p keeps the tiny value
  const Tensor<float> dx = none.backward(Tensor<float>::ones({1, 4}));
  CHECK(dx[0] == 0.0f);
  CHECK(dx[1] == 0.0f);
  CHECK(dx[2] == 1.0f);
  CHECK(std::abs(dx[3]) <= 6e-8f);  // s - t = -4e-18 in exact arithmetic: below float's ulp of 1
  for (float v : dx) CHECK(std::isfinite(v));
}

TEST_CASE("BCEWithLogitsLoss: values by hand, pos_weight per class or one for all",
          "[bce_with_logits_loss]") {
  // x = 0: sigmoid = 1/2, loss = log 2 whatever t (times pw for t = 1)
  BCEWithLogitsLoss<double> sum(Reduction::Sum, Tensor<double>({2}, {3.0, 1.0}));
  const Tensor<double> x({2, 2});
  // t = {1, 1, 0, 0}, set element by element: with g++ 12 -O3 -march=native (AVX-512),
  // Tensor<double>({2, 2}, {1, 1, 0, 0}) in this function came out as {1, 1, 1, 1} (not with
  // clang, -O0, -march=x86-64 or under ASan/UBSan, which report nothing): a compiler issue
  // reported to the lead, kept out of this test's way.
  Tensor<double> t({2, 2});
  t[0] = 1;
  t[1] = 1;
  CHECK(sum.forward(x, t) == Approx((3 + 1 + 1 + 1) * std::log(2.0)));
  // dL/dx = (1 + (pw - 1) t) s - pw t
  CHECK(sum.backward() == Tensor<double>({2, 2}, {3 * 0.5 - 3, 0.5 - 1, 0.5, 0.5}));
  BCEWithLogitsLoss<double> one(Reduction::Mean, Tensor<double>({1}, {3.0}));
  CHECK(one.forward(x, t) == Approx((3 + 3 + 1 + 1) * std::log(2.0) / 4));
}

TEST_CASE("BCEWithLogitsLoss: misuse throws naming the problem", "[bce_with_logits_loss][errors]") {
  BCEWithLogitsLoss<float> criterion(Reduction::Mean, Tensor<float>({3}));
  CHECK_THROWS_WITH(criterion.forward(Tensor<float>({2, 4}), Tensor<float>({2, 4})),
                    "BCEWithLogitsLoss::forward: pos_weight has 3 values, expected 1 or the "
                    "input's last dimension 4");
  CHECK_THROWS_WITH(
      criterion.forward(Tensor<float>({2, 3}), Tensor<float>({2, 4})),
      "BCEWithLogitsLoss::forward: input has shape [2, 3] but target has shape [2, 4]");
  CHECK_THROWS_WITH(BCEWithLogitsLoss<float>(Reduction::Sum, Tensor<float>({2, 2})),
                    "BCEWithLogitsLoss::BCEWithLogitsLoss: pos_weight must be 1-D (C), got shape "
                    "[2, 2]");
}
