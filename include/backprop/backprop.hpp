// SPDX-License-Identifier: MIT
// backprop: umbrella header, every public header of the core library.
#pragma once

#include "batch_norm1d.hpp"
#include "cross_entropy_loss.hpp"
#include "gradcheck.hpp"
#include "linear.hpp"
#include "module.hpp"
#include "parallel.hpp"
#include "random.hpp"
#include "relu.hpp"
#include "sequential.hpp"
#include "sgd.hpp"
#include "tensor.hpp"
// The standard kit (issue #12): more layers, and losses behind one interface.
#include "bce_with_logits_loss.hpp"
#include "dropout.hpp"
#include "gelu.hpp"
#include "l1_loss.hpp"
#include "layer_norm.hpp"
#include "leaky_relu.hpp"
#include "loss.hpp"
#include "mse_loss.hpp"
#include "sigmoid.hpp"
#include "tanh.hpp"
