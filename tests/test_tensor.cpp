// SPDX-License-Identifier: MIT
// Tensor<T>: construction, shapes, reshaping, Eigen views, errors.
#include <backprop/tensor.hpp>
#include <catch2/catch.hpp>

using backprop::Index;
using backprop::Shape;
using backprop::Tensor;

TEST_CASE("Tensor: construction and shape queries", "[tensor]") {
  Tensor<float> t({2, 3, 4});
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.size(0) == 2);
  CHECK(t.size(-1) == 4);
  CHECK(t.size(-3) == 2);
  for (float v : t) CHECK(v == 0.0f);

  const Tensor<double> v({2, 2}, {1, 2, 3, 4});
  CHECK(v.at({1, 0}) == 3.0);  // row-major
  CHECK(Tensor<float>::ones({3})[2] == 1.0f);
  CHECK(Tensor<float>::full({2}, 2.5f)[1] == 2.5f);

  const Tensor<double> scalar(Shape{});
  CHECK(scalar.dim() == 0);
  CHECK(scalar.numel() == 1);
  const Tensor<float> empty;
  CHECK(empty.numel() == 0);
}

TEST_CASE("Tensor: value semantics", "[tensor]") {
  Tensor<float> a({2}, {1, 2});
  Tensor<float> b = a;
  b[0] = 5;
  CHECK(a[0] == 1.0f);  // copies own their data, like Eigen matrices
  CHECK(a != b);
  b[0] = 1;
  CHECK(a == b);
}

TEST_CASE("Tensor: reshape, flatten and views", "[tensor]") {
  Tensor<float> t({2, 3, 4});
  for (Index i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i);

  const Tensor<float> r = t.reshape({4, -1});
  CHECK(r.shape() == Shape{4, 6});
  CHECK(r[7] == 7.0f);
  CHECK(t.shape() == Shape{2, 3, 4});  // lvalue reshape copies

  CHECK(t.flatten(1).shape() == Shape{2, 12});
  CHECK(t.flatten().shape() == Shape{24});
  CHECK(t.flatten(-1).shape() == Shape{2, 3, 4});

  const float* storage = t.data();
  Tensor<float> moved = std::move(t).reshape({6, 4});
  CHECK(moved.data() == storage);  // rvalue reshape moves the storage: no copy
  CHECK(moved.matrix()(1, 0) == 4.0f);

  // view: the same storage as any 2-D matrix, as x.view(x.size(0), -1)
  Tensor<float> images({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor<float>::MatrixMap flat = images.view(images.size(0), -1);
  CHECK(flat.rows() == 2);
  CHECK(flat.cols() == 4);
  flat(1, 3) = 80;
  CHECK(images.at({1, 1, 1}) == 80.0f);
  CHECK(images.vector().size() == 8);
}

TEST_CASE("Tensor: matrix() is a zero-copy row-major Eigen view", "[tensor]") {
  Tensor<double> t({2, 3});
  t.matrix() << 1, 2, 3, 4, 5, 6;
  CHECK(t[1] == 2.0);
  CHECK(t[3] == 4.0);
  CHECK(t.matrix().data() == t.data());
  const Tensor<double> m = Tensor<double>::from_matrix(t.matrix().transpose());
  CHECK(m.shape() == Shape{3, 2});
  CHECK(m.at({0, 1}) == 4.0);
}

TEST_CASE("Tensor: resize keeps storage when it shrinks and grows back", "[tensor]") {
  Tensor<float> t({64, 10});
  const float* storage = t.data();
  t.resize({32, 10});
  CHECK(t.shape() == Shape{32, 10});
  t.resize({64, 10});
  CHECK(t.data() == storage);
}

TEST_CASE("Tensor: misuse throws with a message naming the problem", "[tensor][errors]") {
  Tensor<float> t({2, 3});
  CHECK_THROWS_WITH(t.reshape({4, 2}),
                    "Tensor::reshape: shape [4, 2] is invalid for input of size 6");
  CHECK_THROWS_WITH(t.reshape({-1, -1}), "Tensor::reshape: only one size may be -1, got [-1, -1]");
  CHECK_THROWS_WITH(t.size(2), "Tensor::size: dimension 2 out of range for a tensor of rank 2");
  CHECK_THROWS_WITH(t.at({2, 0}), "Tensor::at: index 2 out of range for dim 0 of size 2");
  CHECK_THROWS_WITH(Tensor<float>({3}).matrix(),
                    "Tensor::matrix: expected a 2-D tensor, got shape [3]");
  CHECK_THROWS_WITH((Tensor<float>({2}, {1, 2, 3})),
                    "Tensor::Tensor: values has 3 elements, expected 2 for shape [2]");
  CHECK_THROWS_WITH(Tensor<float>({-2}), "Tensor: negative size in shape [-2]");
  CHECK_THROWS_AS(Tensor<float>({1L << 40, 1L << 40}), std::invalid_argument);
}

TEST_CASE("Tensor: view checks its sizes", "[tensor][errors]") {
  Tensor<float> t({2, 3});
  CHECK(t.view(-1, 2).rows() == 3);
  CHECK(t.view(6, -1).cols() == 1);
  CHECK_THROWS_WITH(t.view(4, -1), "Tensor::view: shape [4, -1] is invalid for input of size 6");
  CHECK_THROWS_WITH(t.view(-1, -1), "Tensor::view: shape [-1, -1] is invalid for input of size 6");
  CHECK_THROWS_WITH(t.view(2, 2), "Tensor::view: shape [2, 2] is invalid for input of size 6");
  CHECK_THROWS_WITH(t.view(0, -1), "Tensor::view: shape [0, -1] is invalid for input of size 6");
}
