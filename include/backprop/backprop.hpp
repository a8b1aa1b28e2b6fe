// SPDX-License-Identifier: MIT
// backprop: umbrella header, every public header of the core library but gradcheck.hpp.
#pragma once

#include "adam.hpp"
#include "batch_norm1d.hpp"
#include "bce_with_logits_loss.hpp"
#include "clip_grad.hpp"
#include "cross_entropy_loss.hpp"
#include "dropout.hpp"
#include "gelu.hpp"
#include "init.hpp"
#include "l1_loss.hpp"
#include "layer_norm.hpp"
#include "leaky_relu.hpp"
#include "linear.hpp"
#include "loss.hpp"
#include "lr_scheduler.hpp"
#include "module.hpp"
#include "mse_loss.hpp"
#include "optimizer.hpp"
#include "parallel.hpp"
#include "random.hpp"
#include "relu.hpp"
#include "sequential.hpp"
#include "sgd.hpp"
#include "sigmoid.hpp"
#include "tanh.hpp"
#include "tensor.hpp"
// Not gradcheck.hpp, the finite-difference checker for tests: its non-template functions
// (in double, with CrossEntropyLoss<double>) are compiled in every file that includes them,
// which was a third of the time a program including this header took to compile
// (docs/consumers.md). Tests include <backprop/gradcheck.hpp> themselves.
