// Choosing whose kernels a whole int8 model runs: every int8 Linear, Conv2d and residual add in it.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>

#include "runtime/int8_kernels.h"

namespace shrink::compress::quantize {

// Sets `kernels` on every int8 layer of `model` (itself included) and returns how many there were.
int64_t set_int8_kernels(torch::nn::Module& model, runtime::Int8Kernels kernels);

}  // namespace shrink::compress::quantize
