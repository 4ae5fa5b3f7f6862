// The geometry of a Conv2d as the kernels take it (explicit padding, stride, dilation, groups):
// oneDNN's prepacked fp32 convolution and the int8 convolution both start from it.
#pragma once

#include <torch/nn/modules/conv.h>

#include <cstdint>
#include <vector>

namespace shrink::runtime {

struct Conv2dGeometry {
  int64_t in_channels = 0, out_channels = 0, groups = 1;
  std::vector<int64_t> kernel, stride, padding, dilation;
};

// The geometry of a float Conv2d (zero, symmetric padding only: the int8 kernel has no other).
Conv2dGeometry geometry_of(const torch::nn::Conv2dImpl& conv);

}  // namespace shrink::runtime
