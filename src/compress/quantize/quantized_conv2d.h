// Int8 Conv2d on LibTorch's quantized kernels: quint8 in and out, ReLU fused optionally.
#pragma once

#include <ATen/native/quantized/PackedParams.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "compress/quantize/int8_layer.h"
#include "runtime/conv2d_geometry.h"

namespace shrink::compress::quantize {

using runtime::Conv2dGeometry;
using runtime::geometry_of;

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
