// x.flatten(1) for quint8 images in channels-last memory (the int8 convolutions' output, flattened
// before the first int8 Linear): the [N, C·H·W] tensor in NCHW order, by a byte transpose of each
// image. LibTorch's strided element-by-element copy takes ~10x as long here.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace shrink::runtime {

// x.flatten(1): the transpose for a CPU quint8 tensor of rank 4 in channels-last memory order
// (not also contiguous, as one with C = 1 or H = W = 1 is), a view or LibTorch's copy otherwise.
at::Tensor int8_flatten(const at::Tensor& x);

// `batch` images of `pixels` × `channels` bytes to `channels` × `pixels` each.
void transpose_images(const uint8_t* x, int64_t batch, int64_t pixels, int64_t channels, uint8_t* out);

}  // namespace shrink::runtime
