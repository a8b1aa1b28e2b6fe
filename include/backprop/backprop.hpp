// SPDX-License-Identifier: MIT
// backprop: umbrella header, every public header of the core library but gradcheck.hpp.
#pragma once

#include "batch_norm1d.hpp"
#include "cross_entropy_loss.hpp"
#include "linear.hpp"
#include "module.hpp"
#include "parallel.hpp"
#include "random.hpp"
#include "relu.hpp"
#include "sequential.hpp"
#include "sgd.hpp"
#include "tensor.hpp"
// Not gradcheck.hpp, the finite-difference checker for tests: its non-template functions
// (in double, with CrossEntropyLoss<double>) are compiled in every file that includes them,
// which was a third of the time a program including this header took to compile
// (docs/consumers.md). Tests include <backprop/gradcheck.hpp> themselves.
