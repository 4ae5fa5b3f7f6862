// Quantization parameters: integer ranges, scale/zero-point from observed min/max exactly as
// torch.ao.quantization computes them, and the plain scalar reference for (de)quantization.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "core/enum_names.h"

namespace shrink::runtime {

enum class QDtype { kQInt8, kQUInt8 };
inline const core::EnumNames<QDtype>& enum_names(QDtype) {
  static const core::EnumNames<QDtype> names{{QDtype::kQInt8, "qint8"}, {QDtype::kQUInt8, "quint8"}};
  return names;
}

struct QRange {
  int64_t min = 0;
  int64_t max = 0;
};

// qint8 [-128, 127], quint8 [0, 255]; reduce_range drops one bit: [-64, 63], [0, 127].
QRange quant_range(QDtype dtype, bool reduce_range);

// How a tensor maps to integers: one (scale, zero point) pair per tensor, or one per channel
// along `axis`. Scale is float32, zero point int64, both 1-D (size 1 for per-tensor), as PyTorch's
// observers return them.
struct QParams {
  at::Tensor scale;
  at::Tensor zero_point;
  int64_t axis = -1;  // -1: per tensor
  QDtype dtype = QDtype::kQUInt8;
  QRange range;

  bool per_channel() const { return axis >= 0; }
};

// torch.ao.quantization's `_calculate_qparams` for min/max tensors (0-D or 1-D per channel):
// the range is widened to include 0; symmetric schemes centre it (zero point 0 for qint8, 128
// for quint8); scales never fall below float32's epsilon. Computed on min_val's device.
QParams calculate_qparams(const at::Tensor& min_val, const at::Tensor& max_val, QDtype dtype, bool symmetric,
                          bool reduce_range, int64_t axis);

// Plain scalar references (one element at a time, round half to even as ATen does); the fast
// paths (ATen's quantize_per_tensor/_per_channel) are tested against them.
at::Tensor quantize_reference(const at::Tensor& x, const QParams& q);        // int8/uint8 tensor
at::Tensor dequantize_reference(const at::Tensor& q_int, const QParams& q);  // float tensor

// Fast path: ATen's quantizer, returned as the plain integer tensor (int8 or uint8) a file stores,
// clamped to q.range where it is set (7 bits under reduce_range, as fake quantization clamps).
at::Tensor quantize_to_int(const at::Tensor& x, const QParams& q);
// The quantized (qint8/quint8) ATen tensor the int8 kernels take.
at::Tensor to_quantized(const at::Tensor& x, const QParams& q);
// Wraps a stored integer tensor and its parameters as a quantized ATen tensor (no rounding).
at::Tensor from_int(const at::Tensor& q_int, const QParams& q);

}  // namespace shrink::runtime
