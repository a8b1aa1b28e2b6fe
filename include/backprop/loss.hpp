// SPDX-License-Identifier: MIT
// backprop: Loss<T, Target>, the interface every loss implements, and Reduction.
#pragma once

#include <cstdint>
#include <stdexcept>

#include "tensor.hpp"

namespace backprop {

/// How a loss reduces its per-element losses, as PyTorch's `reduction` argument:
/// Mean ('mean', the default), Sum ('sum') or None ('none': the tensor of losses).
enum class Reduction { Mean, Sum, None };

/// The interface of every loss, as torch.nn's loss modules (`criterion(input, target)`).
///
///   forward(input, target) -> T          the scalar L, for Reduction::Mean and ::Sum;
///   forward_tensor(input, target)        the loss as a tensor for any reduction: rank 0 for
///                                        Mean/Sum, the unreduced losses for None (what
///                                        PyTorch's forward returns; forward() is its .item());
///   backward(grad_output = 1)            dL/dinput for Mean/Sum, grad_output = dOuter/dL;
///   backward(grad_output tensor)         the same for any reduction; grad_output has the
///                                        shape of forward_tensor()'s result.
///
/// Target: the type of the targets, a template parameter rather than one tensor type for
/// all, because PyTorch's losses take two kinds: class indices (CrossEntropyLoss: integers,
/// Tensor<std::int64_t>) and values of the input's kind (MSELoss, L1Loss, BCEWithLogitsLoss:
/// Tensor<T>). Keeping them apart means a label is never a float that was silently rounded,
/// and passing probabilities where labels belong is a compile error, not a wrong loss.
/// Code generic over losses (gradcheck) is templated on Target.
/// Like modules, the returned references point to buffers the loss owns, valid until its
/// next call. The gradient with respect to target is not computed (targets are data).
/// Example: MSELoss<float> criterion; float loss = criterion.forward(y, t); criterion.backward();
template <typename T, typename Target = Tensor<T>>
class Loss {
 public:
  using Scalar = T;
  using TargetType = Target;
  virtual ~Loss() = default;

  /// The loss as a tensor: shape [] for Mean/Sum, the unreduced losses for None.
  virtual const Tensor<T>& forward_tensor(const Tensor<T>& input, const Target& target) = 0;
  /// dL/dinput, with grad_output = dOuter/dL of the shape of forward_tensor()'s result.
  virtual const Tensor<T>& backward(const Tensor<T>& grad_output) = 0;

  /// The scalar loss (Mean or Sum). With Reduction::None the loss is a tensor: this throws,
  /// use forward_tensor().
  T forward(const Tensor<T>& input, const Target& target) {
    require(reduction_ != Reduction::None, "forward",
            "reduction is None, so the loss is a tensor: call forward_tensor(input, target)");
    return forward_tensor(input, target)[0];
  }
  T operator()(const Tensor<T>& input, const Target& target) { return forward(input, target); }

  /// dL/dinput for a scalar loss; grad_output = dOuter/dL (1 for loss.backward()).
  const Tensor<T>& backward(T grad_output = T(1)) {
    require(reduction_ != Reduction::None, "backward",
            "reduction is None: pass grad_output as a tensor of the loss's shape");
    scalar_grad_.resize(Shape{});
    scalar_grad_[0] = grad_output;
    return backward(scalar_grad_);
  }

  Reduction reduction() const { return reduction_; }

 protected:
  Loss(Reduction reduction, const char* name) : reduction_(reduction), name_(name) {}
  Loss(const Loss&) = default;
  Loss(Loss&&) noexcept = default;
  Loss& operator=(const Loss&) = default;
  Loss& operator=(Loss&&) noexcept = default;

  // The factor that turns sum_i loss_i into L: 1/count for Mean, 1 for Sum and None.
  T scale(Index count) const { return reduction_ == Reduction::Mean ? T(1) / T(count) : T(1); }

  // Shapes the output for `unreduced` per-element losses: [] for Mean/Sum, else `unreduced`.
  Shape output_shape(const Shape& unreduced) const {
    return reduction_ == Reduction::None ? unreduced : Shape{};
  }

  // Throws std::invalid_argument("<Class>::<method>: <what>") when cond is false.
  template <typename... Args>
  void require(bool cond, const char* method, const Args&... what) const {
    if (!cond) throw std::invalid_argument(detail::concat(name_, "::", method, ": ", what...));
  }

  // forward's checks for a loss whose target has the input's shape: equal shapes, not empty.
  void check_forward(const Tensor<T>& input, const Tensor<T>& target) const {
    require(input.shape() == target.shape(), "forward", "input has shape ",
            detail::shape_str(input.shape()), " but target has shape ",
            detail::shape_str(target.shape()));
    require(input.numel() > 0, "forward", "input is empty");
  }

  // backward's checks: forward ran, and grad_output has the shape of forward's result.
  void check_backward(bool forward_ran, const Tensor<T>& grad_output,
                      const Tensor<T>& output) const {
    require(forward_ran, "backward", "called before forward");
    require(grad_output.shape() == output.shape(), "backward", "grad_output has shape ",
            detail::shape_str(grad_output.shape()), ", expected the loss's shape ",
            detail::shape_str(output.shape()));
  }
  // grad_output's value for unreduced element i (the one scalar for Mean/Sum).
  static T grad_at(const Tensor<T>& grad_output, Index i) {
    return grad_output.dim() == 0 ? grad_output[0] : grad_output[i];
  }

  Reduction reduction_;
  const char* name_;

 private:
  Tensor<T> scalar_grad_;
};

}  // namespace backprop
