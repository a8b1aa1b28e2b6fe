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
// Optimizers, schedules, initialisation and clipping (issue #12).
#include "adam.hpp"
#include "clip_grad.hpp"
#include "init.hpp"
#include "lr_scheduler.hpp"
#include "optimizer.hpp"
