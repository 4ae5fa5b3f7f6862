// ReLU followed by 2x2, stride-2 max pooling as one CPU kernel with its own backward: the pair that
// ends every conv block of the zoo. Unfused, LibTorch makes four passes over the full-size
// activation (relu, pool, and both backwards, plus a zero fill) and keeps int64 pool indices;
// fused, forward reads it once and backward writes it once, from one byte a window. Results are
// bit-identical to at::relu then at::max_pool2d, gradients included (tests/test_relu_max_pool.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/options/pooling.h>

#include <string>

#include "runtime/vector_path.h"

namespace shrink::runtime {

// Whether a MaxPool2d with these options is the 2x2, stride-2 pooling the kernel computes.
bool is_max_pool2x2(const torch::nn::MaxPool2dOptions& options);

// Whether relu_max_pool2x2 takes the fused kernel for x: a CPU, NCHW-contiguous float, double or bfloat16
// tensor of rank 4 with H, W >= 2. Other inputs go through at::relu and at::max_pool2d.
bool relu_max_pool2x2_fuses(const at::Tensor& x);

// Its paths: the scalar reference (every dtype), AVX2 for float and AVX-512 for float and bfloat16,
// tested against it and LibTorch.

// max_pool2d(relu(x), 2) with autograd; the fused kernel where relu_max_pool2x2_fuses(x), the
// fastest this CPU has unless one is named (an Error when the CPU lacks it).
at::Tensor relu_max_pool2x2(const at::Tensor& x);
at::Tensor relu_max_pool2x2(const at::Tensor& x, VectorPath kernel);

}  // namespace shrink::runtime
