// SPDX-License-Identifier: MIT
// Every class template of the core, explicitly instantiated for float and double, so that
// each member function is compiled here: the header-alone TUs instantiate nothing, and this
// TU is built with -Wshadow -Wsign-conversion (tests/headers/CMakeLists.txt).
#include <backprop/backprop.hpp>
#include <backprop/gradcheck.hpp>

namespace backprop {

#define BACKPROP_INSTANTIATE(T)          \
  template class Tensor<T>;              \
  template class Linear<T>;              \
  template class BatchNorm1d<T>;         \
  template class LayerNorm<T>;           \
  template class Dropout<T>;             \
  template class Sequential<T>;          \
  template class ReLU<T>;                \
  template class LeakyReLU<T>;           \
  template class Sigmoid<T>;             \
  template class Tanh<T>;                \
  template class GELU<T>;                \
  template class CrossEntropyLoss<T>;    \
  template class MSELoss<T>;             \
  template class L1Loss<T>;              \
  template class BCEWithLogitsLoss<T>;   \
  template class SGD<T>;                 \
  template class Adam<T>;                \
  template class AdamW<T>;               \
  template class StepLR<SGD<T>>;         \
  template class ExponentialLR<Adam<T>>; \
  template class CosineAnnealingLR<AdamW<T>>;

BACKPROP_INSTANTIATE(float)
BACKPROP_INSTANTIATE(double)

}  // namespace backprop
