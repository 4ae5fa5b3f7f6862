// Int8 Linear layers on LibTorch's quantized kernels: static (quint8 in, quint8 out, ReLU fused
// optionally) and dynamic (float in and out, int8 weights).
#pragma once

#include <ATen/native/quantized/PackedParams.h>
#include <torch/nn/pimpl.h>

#include "compress/quantize/int8_layer.h"
#include "runtime/int8_conv2d.h"
#include "runtime/int8_gemv.h"

namespace shrink::compress::quantize {

class QuantizedLinearImpl : public Int8LayerImpl {
 public:
  QuantizedLinearImpl(int64_t in_features, int64_t out_features, bool per_channel, Activations activations, bool relu);
  // Static: a quantized tensor (a float input is quantized with input_scale first). Dynamic: float.
  // Rows [..., in_features]. shrink's kernels take symmetric weights and run the rows on the
  // convolution's tiles (int8_linear.h); dynamic rows are quantized as LibTorch's kernel would and
  // the output left in float. Under kernels() kAuto, rows run on shrink's at every batch size where
  // it has a vector path (AVX-512 VNNI, AVX-VNNI, AVX2); kShrink runs every row on shrink's (the
  // scalar reference below AVX2), kLibTorch none.
  at::Tensor forward(const at::Tensor& x);
  // LibTorch's packed weights for the stored tensors (packed again when they changed), as the
  // TorchScript value quantized::linear_dynamic and quantized::linear take; an Error where this
  // LibTorch has no quantized::linear_prepack.
  c10::IValue packed();
  // Whether dynamic activations keep 7 bits: where the engine's int8 sums may saturate (no VNNI)
  // and the weights, as last packed, take more than 7 bits (PyTorch's defaults, and files from
  // before shrink's dynamic weights took 7 bits there).
  // Shrink's kernels quantize their rows as the engine's kernel would.
  bool dynamic_reduce_range() const;

 private:
  // The tiles' weights for the stored tensors (again when they changed); LibTorch's on first use.
  void ensure_packed();
  LinearPackedParamsBase& libtorch_pack();
  // Whether shrink's kernels run `x` (a quint8 or float input for static layers, float for dynamic);
  // an Error where neither kernel may.
  bool runs_own(const at::Tensor& x) const;
  void check_rows(const at::Tensor& x) const;  // [..., in_features], in_features > 0
  at::Tensor own_static(const at::Tensor& x);
  at::Tensor own_dynamic(const at::Tensor& x);

  bool ready_ = false;
  c10::intrusive_ptr<LinearPackedParamsBase> packed_;  // LibTorch's, null until its kernels run
  c10::IValue packed_value_;
  bool own_ready_ = false;  // symmetric weights: shrink's kernels take the layer
  runtime::Int8ConvWeights tiles_;
  std::vector<uint8_t> rows_;
  bool wide_weights_ = true;  // any |weight| over 64, as packed
};

TORCH_MODULE(QuantizedLinear);

}  // namespace shrink::compress::quantize
