// Int8 Linear layers on LibTorch's quantized kernels: static (quint8 in, quint8 out, ReLU fused
// optionally) and dynamic (float in and out, int8 weights).
#pragma once

#include <ATen/native/quantized/PackedParams.h>
#include <torch/nn/pimpl.h>

#include "compress/quantize/int8_layer.h"

namespace shrink::compress::quantize {

class QuantizedLinearImpl : public Int8LayerImpl {
 public:
  QuantizedLinearImpl(int64_t in_features, int64_t out_features, bool per_channel, Activations activations, bool relu);
  // Static: a quantized tensor (a float input is quantized with input_scale first). Dynamic: float.
  at::Tensor forward(const at::Tensor& x);

 private:
  c10::intrusive_ptr<LinearPackedParamsBase> packed_;
};

TORCH_MODULE(QuantizedLinear);

}  // namespace shrink::compress::quantize
