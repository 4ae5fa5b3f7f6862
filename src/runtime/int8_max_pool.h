// 2x2, stride-2 max pooling of quint8 images in channels-last order, the int8 convolutions' output:
// a byte maximum per channel, so the same bytes, scale and zero point as LibTorch's quantized
// max_pool2d, which spends ~8x as long here. A scalar reference and an AVX2 path.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "runtime/relu_max_pool.h"

namespace shrink::runtime {

// Whether int8_max_pool2x2 takes x on its own kernel: a CPU quint8 tensor of rank 4 in
// channels-last memory order, H and W >= 2, not empty. Other inputs go through at::max_pool2d.
bool int8_max_pool2x2_applies(const at::Tensor& x);

// max_pool2d(x, 2) of a quint8 tensor, on the fastest kernel this CPU has unless one is named (an
// Error when the CPU lacks it; there is no AVX-512 one: the AVX2 one runs there).
at::Tensor int8_max_pool2x2(const at::Tensor& x);
at::Tensor int8_max_pool2x2(const at::Tensor& x, VectorPath kernel);

// The fastest kernel this CPU has: AVX2, else the reference.
VectorPath int8_max_pool_best_kernel();

// The kernel on raw bytes: `batch` images of height × width pixels by `channels` bytes, to
// (height / 2) × (width / 2) pixels (a last odd row or column is dropped, as floor mode does).
void int8_max_pool2x2(const uint8_t* x, int64_t batch, int64_t height, int64_t width, int64_t channels, uint8_t* out,
                      VectorPath kernel);

}  // namespace shrink::runtime
