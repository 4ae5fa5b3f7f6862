// Int8 Linear layers on LibTorch's quantized kernels: static (quint8 in, quint8 out, ReLU fused
// optionally) and dynamic (float in and out, int8 weights).
#pragma once

#include <ATen/native/quantized/PackedParams.h>
#include <torch/nn/pimpl.h>

#include "compress/quantize/int8_layer.h"
#include "runtime/int8_gemv.h"

namespace shrink::compress::quantize {

class QuantizedLinearImpl : public Int8LayerImpl {
 public:
  QuantizedLinearImpl(int64_t in_features, int64_t out_features, bool per_channel, Activations activations, bool relu);
  // Static: a quantized tensor (a float input is quantized with input_scale first). Dynamic: float.
  // A batch of one goes through shrink's own GEMV (int8_gemv.h) where the weights are symmetric
  // and the CPU has the fast path (dynamic: the row quantized as LibTorch's kernel would, the
  // output left in float); larger batches through LibTorch's kernels.
  at::Tensor forward(const at::Tensor& x);
  void use_own_gemv(bool on) { own_gemv_ = on; }
  // LibTorch's packed weights for the stored tensors (packed again when they changed), as the
  // TorchScript value quantized::linear_dynamic and quantized::linear take.
  c10::IValue packed();
  // Whether dynamic activations keep 7 bits: where the engine's int8 sums may saturate (no VNNI)
  // and the weights, as last packed, take more than 7 bits (PyTorch's defaults, and files from
  // before shrink's dynamic weights took 7 bits there).
  // Batch 1 (shrink's GEMV) quantizes its row as the engine's kernel does larger batches.
  bool dynamic_reduce_range() const;

 private:
  void ensure_packed();
  bool gemv_applies(const at::Tensor& x) const;
  at::Tensor gemv_forward(const at::Tensor& x);
  at::Tensor gemv_dynamic(const at::Tensor& x);

  c10::intrusive_ptr<LinearPackedParamsBase> packed_;
  c10::IValue packed_value_;
  bool own_gemv_ = true;
  bool gemv_ready_ = false;
  runtime::Int8GemvWeights gemv_;
  std::vector<uint8_t> row_;
  bool wide_weights_ = true;  // any |weight| over 64, as packed
};

TORCH_MODULE(QuantizedLinear);

}  // namespace shrink::compress::quantize
