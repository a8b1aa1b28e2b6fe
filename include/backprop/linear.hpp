// SPDX-License-Identifier: MIT
// backprop: Linear, y = x W^T + b, with its hand-written backward pass.
#pragma once

#include <cmath>

#include "detail/gemm.hpp"
#include "module.hpp"
#include "parallel.hpp"
#include "random.hpp"

namespace backprop {

/// y = x W^T + b, as torch.nn.Linear
/// (https://pytorch.org/docs/stable/generated/torch.nn.Linear.html).
/// W and b start uniform in [-1/sqrt(in_features), 1/sqrt(in_features)), PyTorch's default.
/// Derivation: docs/math/linear.md   Proof: tests/test_linear.cpp
/// Example: Linear<float> fc(784, 300); const Tensor<float>& y = fc.forward(x);
template <typename T>
class Linear : public Module<T> {
 public:
  Linear(Index in_features, Index out_features, bool with_bias = true)
      : Linear(in_features, out_features, with_bias, default_generator()) {}
  Linear(Index in_features, Index out_features, bool with_bias, Generator& gen)
      : in_features_(in_features), out_features_(out_features), has_bias_(with_bias) {
    detail::check(in_features > 0, "Linear", "in_features must be positive, got ", in_features);
    detail::check(out_features > 0, "Linear", "out_features must be positive, got ", out_features);
    // kaiming_uniform_(a = sqrt(5)) reduces to this bound; the bias uses the same one.
    const T bound = T(1) / std::sqrt(static_cast<T>(in_features));
    weight = Tensor<T>::rand({out_features, in_features}, gen, -bound, bound);
    grad_weight = Tensor<T>::zeros({out_features, in_features});
    if (has_bias_) {
      bias = Tensor<T>::rand({out_features}, gen, -bound, bound);
      grad_bias = Tensor<T>::zeros({out_features});
    }
  }

  // x: (N, in) -> y: (N, out). Saves a copy of x (so the caller may reuse its buffer).
  const Tensor<T>& forward(const Tensor<T>& x) override {
    detail::check(x.dim() == 2, "Linear::forward", "x must be 2-D (N, in_features), got shape ",
                  detail::shape_str(x.shape()));
    detail::check(x.size(1) == in_features_, "Linear::forward", "x has ", x.size(1),
                  " columns, expected in_features = ", in_features_);
    input_.resize(x.shape());
    input_.vector() = x.vector();
    output_.resize({x.size(0), out_features_});
    // y[:, j:j+n] = x W[j:j+n, :]^T, one block of output features per call; the blocks run
    // on set_num_threads() threads (parallel.hpp). W's rows j..j+n, read column-major, are
    // that block of W^T. The products read the saved copy: x may be this layer's own output.
    const Index batch = x.size(0), in = in_features_, out = out_features_;
    const T* w = weight.data();
    T* y = output_.data();
    detail::parallel_blocks(out, flops(batch), [&](Index j, Index n) {
      detail::gemm<T>(batch, n, in, {input_.data(), in, true}, {w + j * in, in, false}, y + j, out);
    });
    if (has_bias_) output_.matrix().rowwise() += bias.vector().transpose();
    return output_;
  }

  // dy = grad_output (N, out). Accumulates into grad_*, returns dL/dx.
  //   dL/dW += dy^T * x     (out, in)
  //   dL/db += sum_n dy     (out)
  //   dL/dx  = dy * W       (N, in)
  const Tensor<T>& backward(const Tensor<T>& grad_output) override {
    detail::check(input_.dim() == 2, "Linear::backward", "called before forward");
    detail::check_grad_output_shape(grad_output.shape(), output_.shape(), "Linear::backward");
    const Index batch = input_.size(0), in = in_features_, out = out_features_;
    const T* dy = grad_output.data();
    const T* x = input_.data();
    const T* w = weight.data();
    // dW[j:j+n, :] += dy[:, j:j+n]^T x; that block of dy, read column-major, is its transpose.
    T* dw = grad_weight.data();
    detail::parallel_blocks(out, flops(batch), [&](Index j, Index n) {
      detail::gemm_add<T>(n, in, batch, {dy + j, out, false}, {x, in, true}, dw + j * in, in);
    });
    if (has_bias_) grad_bias.vector() += grad_output.matrix().colwise().sum().transpose();
    if (!this->input_requires_grad()) {  // first layer: dL/dx is never read
      grad_input_.resize({0});
      return grad_input_;
    }
    // dx[:, i:i+n] = dy W[:, i:i+n]
    grad_input_.resize(input_.shape());
    T* dx = grad_input_.data();
    detail::parallel_blocks(in, flops(batch), [&](Index i, Index n) {
      detail::gemm<T>(batch, n, out, {dy, out, true}, {w + i, in, true}, dx + i, in);
    });
    return grad_input_;
  }

  void visit(StateVisitor<T>& v) override {
    v.parameter("weight", weight, grad_weight);
    if (has_bias_) v.parameter("bias", bias, grad_bias);
  }

  Index in_features() const { return in_features_; }
  Index out_features() const { return out_features_; }

  Tensor<T> weight, bias, grad_weight, grad_bias;  // W (out, in), b (out): PyTorch shapes

 private:
  // Multiply-adds of one of the three products, times 2: N * in * out * 2.
  double flops(Index batch) const {
    return 2.0 * double(batch) * double(in_features_) * double(out_features_);
  }

  Index in_features_, out_features_;
  bool has_bias_;
  Tensor<T> input_;                // saved x (N, in)
  Tensor<T> output_, grad_input_;  // reused buffers
};

}  // namespace backprop
