// SPDX-License-Identifier: MIT
// backprop: LayerNorm over the last dimension(s), with its hand-written backward pass.
#pragma once

#include <cmath>
#include <utility>

#include "module.hpp"

namespace backprop {

/// Layer normalisation, as torch.nn.LayerNorm
/// (https://pytorch.org/docs/stable/generated/torch.nn.LayerNorm.html): each sample is
/// normalised over its last D dimensions, the normalized_shape (D = 1 for LayerNorm(C) on a
/// (N, C) input), with the biased variance, then scaled by weight and shifted by bias
/// (elementwise_affine = true; both have shape normalized_shape, as PyTorch's state_dict).
/// Shapes: any input whose trailing dimensions equal normalized_shape, e.g. (N, C) with
/// LayerNorm(C), (N, L, C) with LayerNorm(C), (N, A, B) with LayerNorm({A, B}); the leading
/// dimensions are flattened into M rows of K = prod(normalized_shape) values. The same in
/// train() and eval() (no running statistics).
/// Derivation: docs/math/layer_norm.md   Proof: tests/test_layer_norm.cpp
/// Example: LayerNorm<float> ln(300); const Tensor<float>& y = ln.forward(x);
template <typename T>
class LayerNorm : public Module<T> {
  using MatrixMap = typename Tensor<T>::MatrixMap;
  using ConstMatrixMap = typename Tensor<T>::ConstMatrixMap;
  using VectorMap = typename Tensor<T>::VectorMap;

 public:
  explicit LayerNorm(Index normalized_shape, double eps = 1e-5, bool elementwise_affine = true)
      : LayerNorm(Shape{normalized_shape}, eps, elementwise_affine) {}
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true)
      : normalized_shape_(std::move(normalized_shape)), eps_(eps), affine_(elementwise_affine) {
    detail::check(!normalized_shape_.empty(), "LayerNorm", "normalized_shape must not be empty");
    for (Index d : normalized_shape_)
      detail::check(d > 0, "LayerNorm", "normalized_shape must be positive, got ",
                    detail::shape_str(normalized_shape_));
    detail::check(eps > 0, "LayerNorm", "eps must be positive, got ", eps);
    if (affine_) {
      weight = Tensor<T>::ones(normalized_shape_);
      bias = Tensor<T>::zeros(normalized_shape_);
      grad_weight = Tensor<T>::zeros(normalized_shape_);
      grad_bias = Tensor<T>::zeros(normalized_shape_);
    }
  }

  // x: (..., normalized_shape) seen as (M, K) -> y, same shape. Per row m:
  //   mean = mean_k x;  var = mean_k (x - mean)^2;  inv_std = (var + eps)^-1/2
  //   x_hat = (x - mean) * inv_std;  y = gamma * x_hat + beta   (gamma = weight, beta = bias)
  // Saves x_hat (M, K) and inv_std (M). Under a NoGradGuard, where no backward() follows,
  // x_hat is built in y's storage instead.
  const Tensor<T>& forward(const Tensor<T>& x) override {
    const Index d = static_cast<Index>(normalized_shape_.size());
    bool ok = x.dim() >= d;
    for (Index i = 0; ok && i < d; ++i)
      ok = x.size(x.dim() - d + i) == normalized_shape_[static_cast<std::size_t>(i)];
    detail::check(
        ok, "LayerNorm::forward", "x has shape ", detail::shape_str(x.shape()),
        ", expected trailing dimensions normalized_shape = ", detail::shape_str(normalized_shape_));
    const Index k = weight_numel(), m = x.numel() / k;
    const ConstMatrixMap xm = x.view(m, k);
    // Unsaved, x_hat is y's storage, which may be x itself (forward(forward(x))): Eigen sums
    // each row before the subtraction writes it, and every later step is element by element.
    saved_ = is_grad_enabled();
    if (saved_) x_hat_.resize(x.shape());
    output_.resize(x.shape());
    inv_std_.resize({m});
    MatrixMap x_hat = saved_ ? x_hat_.view(m, k) : output_.view(m, k);
    VectorMap inv_std = inv_std_.vector();
    x_hat = xm.colwise() - xm.rowwise().mean();  // x - mean (M, K)
    inv_std = ((x_hat.rowwise().squaredNorm() / T(k)).array() + T(eps_)).rsqrt().matrix();
    x_hat.array().colwise() *= inv_std.array();  // x_hat (M, K)
    MatrixMap y = output_.view(m, k);
    if (affine_) {
      y = (x_hat.array().rowwise() * weight.vector().transpose().array()).rowwise() +
          bias.vector().transpose().array();
    } else if (saved_) {  // unsaved, x_hat is y already
      y = x_hat;
    }
    return output_;
  }

  // dy = grad_output (M, K); mean_k is the mean over a row's K values, sum_m over the rows.
  //   dbeta  += sum_m dy                                                         (K)
  //   dgamma += sum_m dy * x_hat                                                 (K)
  //   g = gamma * dy                                                             (M, K)
  //   dx = inv_std * (g - mean_k(g) - x_hat * mean_k(g * x_hat))                 (M, K)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    detail::check(saved_, "LayerNorm::backward",
                  "called before forward, or after a forward under NoGradGuard");
    detail::check_grad_output_shape(grad_output.shape(), x_hat_.shape(), "LayerNorm::backward");
    const Index k = weight_numel(), m = x_hat_.numel() / k;
    const ConstMatrixMap dy = grad_output.view(m, k);
    const ConstMatrixMap x_hat = std::as_const(x_hat_).view(m, k);
    if (affine_) {
      accumulate_grad(grad_bias, bias, dy.colwise().sum().transpose());
      accumulate_grad(grad_weight, weight, dy.cwiseProduct(x_hat).colwise().sum().transpose());
    }
    grad_input_.resize(x_hat_.shape());
    MatrixMap dx = grad_input_.view(m, k);
    if (affine_)
      dx = dy.array().rowwise() * weight.vector().transpose().array();  // g (M, K)
    else
      dx = dy;
    mean_g_.resize({m});
    mean_g_x_hat_.resize({m});
    mean_g_.vector() = dx.rowwise().mean();                            // (M)
    mean_g_x_hat_.vector() = dx.cwiseProduct(x_hat).rowwise().mean();  // (M)
    // term 1: g; term 2: -mean_k(g); term 3: -x_hat * mean_k(g * x_hat)
    dx.colwise() -= mean_g_.vector();
    dx -= (x_hat.array().colwise() * mean_g_x_hat_.vector().array()).matrix();
    dx.array().colwise() *= inv_std_.vector().array();
    return grad_input_;
  }

  void visit(StateVisitor<T>& v) override {
    if (affine_) {
      v.parameter("weight", weight, grad_weight);
      v.parameter("bias", bias, grad_bias);
    }
  }

  const Shape& normalized_shape() const { return normalized_shape_; }
  double eps() const { return eps_; }

  Tensor<T> weight, bias, grad_weight, grad_bias;  // gamma, beta: normalized_shape

 private:
  Index weight_numel() const {
    Index k = 1;
    for (Index d : normalized_shape_) k *= d;
    return k;
  }

  Shape normalized_shape_;
  double eps_;
  bool affine_;
  bool saved_ = false;               // whether the last forward saved x_hat
  Tensor<T> x_hat_, inv_std_;        // saved: x's shape (M, K), (M)
  Tensor<T> output_, grad_input_;    // reused buffers
  Tensor<T> mean_g_, mean_g_x_hat_;  // reused buffers (M)
};

}  // namespace backprop
