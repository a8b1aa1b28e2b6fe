// SPDX-License-Identifier: MIT
// backprop: Tensor<T>, a contiguous row-major n-dimensional array with Eigen views.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/error.hpp"
#include "random.hpp"

namespace backprop {

// Shape legend used in every header's comments:
//   N = batch size (rows), C = features / classes (columns).
// Storage is row-major, so a (N, C) tensor is N rows of C contiguous values: one sample per
// row, exactly PyTorch's layout, and the same bytes a safetensors file holds.

using Index = Eigen::Index;
using Shape = std::vector<Index>;

namespace detail {
// Eigen's aligned allocator (64 bytes with AVX-512), except that growing a vector leaves the
// new elements uninitialised instead of zeroing them. Tensor::resize promises unspecified
// contents, and a gradient set to none (zero_grad(true)) is resized on every backward, which
// then overwrites it: zero-filling there would bring back the memset set_to_none saves.
template <typename T>
struct UninitAllocator : Eigen::aligned_allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <typename U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;  // default-initialised: no value written for float
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
}  // namespace detail

/// A contiguous, row-major, n-dimensional array of T, owning its storage (value semantics,
/// like an Eigen matrix: copying a Tensor copies its data). Rank 0 is a scalar.
/// Example: Tensor<float> x = Tensor<float>::zeros({64, 784}); x.matrix().row(0).setOnes();
template <typename T>
class Tensor {
 public:
  using Scalar = T;
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  using MatrixMap = Eigen::Map<Matrix>;
  using ConstMatrixMap = Eigen::Map<const Matrix>;
  using VectorMap = Eigen::Map<Vector>;
  using ConstVectorMap = Eigen::Map<const Vector>;

  /// An empty tensor of shape [0].
  Tensor() : shape_{0} {}

  /// Zeros of the given shape.
  explicit Tensor(Shape shape)
      : shape_(std::move(shape)), data_(static_cast<std::size_t>(checked_numel(shape_)), T(0)) {}

  /// The given values, row-major; their count must match the shape.
  Tensor(Shape shape, std::vector<T> values) : shape_(std::move(shape)) {
    const Index n = checked_numel(shape_);
    detail::check(static_cast<Index>(values.size()) == n, "Tensor::Tensor", "values has ",
                  values.size(), " elements, expected ", n, " for shape ",
                  detail::shape_str(shape_));
    data_.assign(values.begin(), values.end());
  }

  static Tensor zeros(Shape shape) { return Tensor(std::move(shape)); }
  static Tensor ones(Shape shape) { return full(std::move(shape), T(1)); }
  static Tensor full(Shape shape, T value) {
    Tensor t(std::move(shape));
    t.fill_(value);
    return t;
  }
  /// Uniform in [low, high), as torch.empty(shape).uniform_(low, high).
  static Tensor rand(Shape shape, Generator& gen, T low = T(0), T high = T(1)) {
    Tensor t(std::move(shape));
    for (T& v : t.data_) v = gen.uniform<T>(low, high);
    return t;
  }
  /// Normal(mean, std), as torch.empty(shape).normal_(mean, std).
  static Tensor randn(Shape shape, Generator& gen, T mean = T(0), T std = T(1)) {
    Tensor t(std::move(shape));
    for (T& v : t.data_) v = gen.normal<T>(mean, std);
    return t;
  }
  /// A copy of an Eigen matrix, as a (rows, cols) tensor.
  template <typename Derived>
  static Tensor from_matrix(const Eigen::MatrixBase<Derived>& m) {
    Tensor t({m.rows(), m.cols()});
    t.matrix() = m;
    return t;
  }

  // --- shape queries -----------------------------------------------------------------
  Index dim() const { return static_cast<Index>(shape_.size()); }
  const Shape& shape() const { return shape_; }
  /// Size of dimension d; negative d counts from the end, as in PyTorch.
  Index size(Index d) const {
    return shape_[static_cast<std::size_t>(wrap_dim(d, "Tensor::size"))];
  }
  Index numel() const { return static_cast<Index>(data_.size()); }

  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  T& operator[](Index i) { return data_[static_cast<std::size_t>(i)]; }
  const T& operator[](Index i) const { return data_[static_cast<std::size_t>(i)]; }
  T* begin() { return data(); }
  T* end() { return data() + numel(); }
  const T* begin() const { return data(); }
  const T* end() const { return data() + numel(); }

  /// The element at a full multi-index, bounds-checked: t.at({i, j}).
  T& at(std::initializer_list<Index> index) { return data_[offset(index)]; }
  const T& at(std::initializer_list<Index> index) const { return data_[offset(index)]; }

  // --- reshaping (one size may be -1 and is inferred) ----------------------------------
  /// The same values with a new shape. A copy from an lvalue; from an rvalue the storage
  /// moves, so std::move(x).reshape(...) never copies.
  Tensor reshape(Shape shape) const& { return Tensor(*this).reshape(std::move(shape)); }
  Tensor reshape(Shape shape) && {
    shape_ = infer_shape(std::move(shape));
    return std::move(*this);
  }
  /// Collapses dimensions start_dim.. into one, as torch.flatten(x, start_dim).
  Tensor flatten(Index start_dim = 0) const& { return Tensor(*this).flatten(start_dim); }
  Tensor flatten(Index start_dim = 0) && {
    if (dim() == 0) return std::move(*this).reshape({1});
    const Index s = wrap_dim(start_dim, "Tensor::flatten");
    Shape shape(shape_.begin(), shape_.begin() + s);
    shape.push_back(-1);
    return std::move(*this).reshape(std::move(shape));
  }

  /// Gives the tensor a new shape, reusing its storage when it is large enough: the
  /// modules size their output and gradient buffers with this, so a steady-state training
  /// step (including the last, smaller batch) allocates nothing. Contents are unspecified.
  void resize(const Shape& shape) {
    if (shape_ == shape) return;
    const Index n = checked_numel(shape);
    shape_ = shape;
    data_.resize(static_cast<std::size_t>(n));
    poison();
  }
  /// resize({N, C}): compares before it touches the shape, and reuses the shape's storage,
  /// so that resizing (to the smaller last batch, to {0} and back) never allocates.
  void resize(std::initializer_list<Index> shape) {
    if (shape.size() == shape_.size() && std::equal(shape.begin(), shape.end(), shape_.begin()))
      return;
    const Index n = checked_numel(shape.begin(), shape.end());
    shape_.assign(shape.begin(), shape.end());
    data_.resize(static_cast<std::size_t>(n));
    poison();
  }

  void fill_(T value) { std::fill(data_.begin(), data_.end(), value); }
  void zero_() { fill_(T(0)); }

  // --- zero-copy Eigen views ---------------------------------------------------------
  /// The 2-D tensor as a (rows, cols) row-major Eigen matrix sharing this storage.
  // (rows first: argument order is unspecified, and shape_[1] exists only once it passed)
  MatrixMap matrix() {
    const Index rows = rows_for("Tensor::matrix");
    return MatrixMap(data(), rows, shape_[1]);
  }
  ConstMatrixMap matrix() const {
    const Index rows = rows_for("Tensor::matrix");
    return ConstMatrixMap(data(), rows, shape_[1]);
  }
  /// All values as an Eigen column vector sharing this storage (any rank).
  VectorMap vector() { return VectorMap(data(), numel()); }
  ConstVectorMap vector() const { return ConstVectorMap(data(), numel()); }
  /// The storage seen as any (rows, cols) matrix with rows * cols = numel(); one of them
  /// may be -1: x.view(x.size(0), -1) is torch's x.view(x.size(0), -1), without a copy.
  MatrixMap view(Index rows, Index cols) {
    infer_2d(rows, cols);
    return MatrixMap(data(), rows, cols);
  }
  ConstMatrixMap view(Index rows, Index cols) const {
    infer_2d(rows, cols);
    return ConstMatrixMap(data(), rows, cols);
  }

  friend bool operator==(const Tensor& a, const Tensor& b) {
    return a.shape_ == b.shape_ && a.data_ == b.data_;
  }
  friend bool operator!=(const Tensor& a, const Tensor& b) { return !(a == b); }

 private:
  static Index checked_numel(const Shape& shape) {
    return checked_numel(shape.begin(), shape.end());
  }
  template <typename It>
  static Index checked_numel(It first, It last) {
    Index n = 1;
    for (It it = first; it != last; ++it) {
      const Index d = *it;
      if (d < 0 || (d != 0 && n > std::numeric_limits<Index>::max() / d)) {
        const Shape shape(first, last);  // only on the error path
        detail::check(d >= 0, "Tensor", "negative size in shape ", detail::shape_str(shape));
        detail::check(false, "Tensor", "shape ", detail::shape_str(shape),
                      " has too many elements");
      }
      n *= d;
    }
    return n;
  }

  Index wrap_dim(Index d, const char* where) const {
    const Index r = dim();
    detail::check(d >= -r && d < r, where, "dimension ", d, " out of range for a tensor of rank ",
                  r);
    return d < 0 ? d + r : d;
  }

  std::size_t offset(std::initializer_list<Index> index) const {
    detail::check(static_cast<Index>(index.size()) == dim(), "Tensor::at", "index has ",
                  index.size(), " coordinates, tensor has rank ", dim());
    std::size_t off = 0, d = 0;
    for (Index i : index) {
      detail::check(i >= 0 && i < shape_[d], "Tensor::at", "index ", i, " out of range for dim ", d,
                    " of size ", shape_[d]);
      off = off * static_cast<std::size_t>(shape_[d]) + static_cast<std::size_t>(i);
      ++d;
    }
    return off;
  }

  Shape infer_shape(Shape shape) const {
    Index known = 1, infer_at = -1;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == -1) {
        detail::check(infer_at < 0, "Tensor::reshape", "only one size may be -1, got ",
                      detail::shape_str(shape));
        infer_at = static_cast<Index>(d);
      } else {
        detail::check(shape[d] >= 0, "Tensor::reshape", "invalid size in ",
                      detail::shape_str(shape));
        known *= shape[d];
      }
    }
    if (infer_at >= 0) {
      detail::check(known != 0 && numel() % known == 0, "Tensor::reshape", "shape ",
                    detail::shape_str(shape), " is invalid for input of size ", numel());
      shape[static_cast<std::size_t>(infer_at)] = numel() / known;
      known *= shape[static_cast<std::size_t>(infer_at)];
    }
    detail::check(known == numel(), "Tensor::reshape", "shape ", detail::shape_str(shape),
                  " is invalid for input of size ", numel());
    return shape;
  }

  Index rows_for(const char* where) const {
    detail::check(dim() == 2, where, "expected a 2-D tensor, got shape ",
                  detail::shape_str(shape_));
    return shape_[0];
  }

  // The sanitizer build (BACKPROP_SANITIZE) defines BACKPROP_POISON_RESIZE: a resized buffer
  // then reads as NaN until written, so code that reads one before writing it fails a test.
  // Define it for a whole program or not at all (it changes inline functions).
  void poison() {
#ifdef BACKPROP_POISON_RESIZE
    if constexpr (std::numeric_limits<T>::has_quiet_NaN) fill_(std::numeric_limits<T>::quiet_NaN());
#endif
  }

  // As infer_shape for two sizes, without building a Shape (views are made on hot paths).
  void infer_2d(Index& rows, Index& cols) const {
    const Index n = numel();
    const bool ok = rows == -1   ? cols > 0 && n % cols == 0 && cols != -1
                    : cols == -1 ? rows > 0 && n % rows == 0
                                 : rows >= 0 && cols >= 0 && rows * cols == n;
    detail::check(ok, "Tensor::view", "shape [", rows, ", ", cols,
                  "] is invalid for input of size ", n);
    if (rows == -1) rows = n / cols;
    if (cols == -1) cols = n / rows;
  }

  Shape shape_;
  std::vector<T, detail::UninitAllocator<T>> data_;
};

}  // namespace backprop
