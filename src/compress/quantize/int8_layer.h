// What every int8 layer stores, as plain tensors (never packed params): int8 weights with their
// scale(s), zero point(s) and axis, a float bias, and the quantization of its input and output
// activations. LibTorch's packed weights are derived from them on first use and re-derived when
// the tensors change (a load, a copy).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <string>
#include <vector>

#include "compress/quantize/backend.h"
#include "runtime/int8_kernels.h"
#include "runtime/qparams.h"

namespace shrink::compress::quantize {

// Which activation arithmetic a layer uses: static (input and output scales fixed by calibration
// or QAT) or dynamic (float in and out; the input is quantized per batch at run time).
enum class Activations { kStatic, kDynamic };

class Int8LayerImpl : public torch::nn::Module {
 public:
  // Buffers: weight (int8, `weight_shape`), weight_scale and weight_zero_point (`channels` of
  // them per channel, or 1), bias (float, out channels); static layers also input_scale,
  // input_zero_point, scale and zero_point (the output's), one each.
  Int8LayerImpl(std::vector<int64_t> weight_shape, bool per_channel, Activations activations, bool relu);

  // Quantizes `weight` with `q` (its axis must be 0 or per tensor) and stores it with `bias`.
  void set_weight(const at::Tensor& weight, const at::Tensor& bias, const QParams& q);
  void set_input(const QParams& q);   // static only
  void set_output(const QParams& q);  // static only

  QParams weight_qparams() const;
  QParams input_qparams() const;
  QParams output_qparams() const;
  at::Tensor dequantized_weight() const;
  const at::Tensor& int8_weight() const { return weight_; }  // the stored int8 values
  const at::Tensor& float_bias() const { return bias_; }
  bool relu() const { return relu_; }
  Activations activations() const { return activations_; }
  bool per_channel() const { return per_channel_; }
  // The engine the layer's packed weights were made for (packing again when it changes).
  Backend backend() const { return backend_; }
  void set_backend(Backend b) { backend_ = b; }
  // Whose kernels run the layer (runtime/int8_kernels.h); the stored tensors are the same for both.
  runtime::Int8Kernels kernels() const { return kernels_; }
  void set_kernels(runtime::Int8Kernels k) { kernels_ = k; }

 protected:
  // A quantized input: `x` itself when it already is one, else `x` quantized with input_scale, in
  // `format` memory order, by quantize_row (ATen's rounding; Debian's ATen quantizes value by value).
  at::Tensor quantized_input(const at::Tensor& x, at::MemoryFormat format = at::MemoryFormat::Contiguous);
  // True when the stored tensors changed since the last call (so the pack must be rebuilt).
  bool stale();
  at::Tensor quantized_weight() const;
  // The activations' parameters as numbers, refreshed by stale() (no tensor reads per call).
  double in_scale_ = 1.0, out_scale_ = 1.0;
  int64_t in_zero_point_ = 0, out_zero_point_ = 0;

  at::Tensor weight_, weight_scale_, weight_zero_point_, bias_;
  at::Tensor input_scale_, input_zero_point_, scale_, zero_point_;

 private:
  std::vector<int64_t> versions() const;
  bool per_channel_;
  Activations activations_;
  bool relu_;
  Backend backend_ = Backend::kOneDnn;
  runtime::Int8Kernels kernels_ = runtime::Int8Kernels::kAuto;
  std::vector<int64_t> packed_versions_;
  Backend packed_backend_ = Backend::kOneDnn;
};

}  // namespace shrink::compress::quantize
