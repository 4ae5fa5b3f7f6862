// Int8 Conv2d: quint8 in and out, ReLU fused optionally; on shrink's own kernel (int8_conv2d.h)
// where it applies, else on LibTorch's quantized kernels.
#pragma once

#include <ATen/native/quantized/PackedParams.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "compress/quantize/int8_layer.h"
#include "runtime/conv2d_geometry.h"
#include "runtime/int8_conv2d.h"

namespace shrink::compress::quantize {

using runtime::Conv2dGeometry;
using runtime::geometry_of;

class QuantizedConv2dImpl : public Int8LayerImpl {
 public:
  QuantizedConv2dImpl(Conv2dGeometry geometry, bool per_channel, bool relu);
  // A quantized NCHW batch (a float one is quantized with input_scale first); the output is in
  // channels-last memory order, as LibTorch's int8 convolutions give it. One image runs on
  // shrink's own kernel where the weights are symmetric, groups is 1 and the CPU has a vector
  // path for it; larger batches and other layers on LibTorch's (oneDNN, FBGEMM or QNNPACK).
  at::Tensor forward(const at::Tensor& x);
  void use_own_kernel(bool on) { own_kernel_ = on; }
  const Conv2dGeometry& geometry() const { return geometry_; }

 private:
  void ensure_packed();
  at::Tensor own_forward(const at::Tensor& x);

  Conv2dGeometry geometry_;
  c10::intrusive_ptr<ConvPackedParamsBase<2>> packed_;
  bool own_kernel_ = true;
  bool own_ready_ = false;
  runtime::Int8ConvWeights own_;
};

TORCH_MODULE(QuantizedConv2d);

}  // namespace shrink::compress::quantize
