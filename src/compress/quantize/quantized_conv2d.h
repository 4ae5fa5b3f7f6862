// Int8 Conv2d: quint8 in and out, ReLU fused optionally; on shrink's own kernel (int8_conv2d.h)
// where it applies, else on LibTorch's quantized kernels.
#pragma once

#include <ATen/native/quantized/PackedParams.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "compress/quantize/int8_layer.h"
#include "models/max_pool_fusion.h"
#include "runtime/conv2d_geometry.h"
#include "runtime/int8_conv2d.h"

namespace shrink::compress::quantize {

using runtime::Conv2dGeometry;
using runtime::geometry_of;

// Whether kernels kAuto runs convolutions on shrink's kernel, as fast as LibTorch's or faster on
// this CPU's path (docs/quantization.md): on AVX-512 VNNI (for one image LibTorch's spends ~8 µs a
// call setting up; at 64 images shrink's tiles matched or beat oneDNN's on a Xeon); on AVX-VNNI
// (1.6–1.9x oneDNN 2.6's there, capped on the same Xeon); on AVX2 without VNNI of either kind,
// where activations are 7-bit (backend.h) and shrink's tile sums them in 16 bits, exactly, as
// oneDNN's saturating sums cannot.
bool auto_prefers_own_conv2d();

class QuantizedConv2dImpl : public Int8LayerImpl, public models::MaxPoolFusion {
 public:
  QuantizedConv2dImpl(Conv2dGeometry geometry, bool per_channel, bool relu);
  // A quantized NCHW batch (a float one is quantized with input_scale first); the output is in
  // channels-last memory order, as LibTorch's int8 convolutions give it. Under kernels() kAuto,
  // a CPU auto_prefers_own_conv2d names runs it on shrink's own kernel where the weights are
  // symmetric and groups is 1, others on LibTorch's (oneDNN, FBGEMM or QNNPACK); kShrink runs every
  // batch on shrink's (AVX-512 VNNI, AVX-VNNI, AVX2 or, below AVX2, the scalar reference),
  // kLibTorch none.
  at::Tensor forward(const at::Tensor& x);
  // forward then a 2x2 max pooling, in one pass on shrink's kernel (int8_conv2d_max_pool2x2) where
  // forward would run x on it; undefined elsewhere, and where the output is under 2x2.
  at::Tensor forward_max_pool2x2(const at::Tensor& x) override;
  const Conv2dGeometry& geometry() const { return geometry_; }

 private:
  // Checks the stored tensors; both kernels' weights are packed (again) on first use.
  void ensure_packed();
  ConvPackedParamsBase<2>& libtorch_pack();
  // Whether shrink's kernel runs `x`; an Error where neither kernel may.
  bool runs_own(const at::Tensor& x);
  // An Error unless x is [N, in_channels, H, W].
  void check_input(const at::Tensor& x) const;
  at::Tensor own_forward(const at::Tensor& x, bool pooled);

  Conv2dGeometry geometry_;
  bool ready_ = false;
  c10::intrusive_ptr<ConvPackedParamsBase<2>> packed_;  // LibTorch's, null until its kernels run
  bool own_fits_ = false;                               // symmetric weights, one group
  bool own_packed_ = false;                             // packed on first use: most CPUs and batches never take it
  runtime::Int8ConvWeights own_;
};

TORCH_MODULE(QuantizedConv2d);

}  // namespace shrink::compress::quantize
