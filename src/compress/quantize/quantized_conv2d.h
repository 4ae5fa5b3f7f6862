// Int8 Conv2d on LibTorch's quantized kernels: quint8 in and out, ReLU fused optionally.
#pragma once

#include <ATen/native/quantized/PackedParams.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "compress/quantize/int8_layer.h"

namespace shrink::compress::quantize {

struct Conv2dGeometry {
  int64_t in_channels = 0, out_channels = 0, groups = 1;
  std::vector<int64_t> kernel, stride, padding, dilation;
};

// The geometry of a float Conv2d (zero, symmetric padding only: the int8 kernel has no other).
Conv2dGeometry geometry_of(const torch::nn::Conv2dImpl& conv);

class QuantizedConv2dImpl : public Int8LayerImpl {
 public:
  QuantizedConv2dImpl(Conv2dGeometry geometry, bool per_channel, bool relu);
  at::Tensor forward(const at::Tensor& x);
  const Conv2dGeometry& geometry() const { return geometry_; }

 private:
  Conv2dGeometry geometry_;
  c10::intrusive_ptr<ConvPackedParamsBase<2>> packed_;
};

TORCH_MODULE(QuantizedConv2d);

}  // namespace shrink::compress::quantize
