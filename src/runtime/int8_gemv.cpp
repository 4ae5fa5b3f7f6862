// The int8 Linear's scalar reference (rows of quint8 times symmetric int8 weights, requantized or
// dequantized), and the quint8 parameters LibTorch's dynamic Linear picks for its input.
#include "runtime/int8_gemv.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace shrink::runtime {

namespace {

// Row r's integer sum, corrected for the input zero point, dequantized: a dynamic layer's output,
// and what a static one requantizes. The tiles (int8_linear.h) do the same float operations.
float row_value(const Int8GemvWeights& w, const uint8_t* x, int64_t r, const Int8GemvParams& p) {
  const int8_t* row = w.values.data() + r * w.cols;
  int32_t acc = 0;
  for (int64_t k = 0; k < w.cols; ++k) acc += static_cast<int32_t>(x[k]) * static_cast<int32_t>(row[k]);
  acc -= p.in_zero_point * w.row_sums[static_cast<size_t>(r)];
  const float y =
      static_cast<float>(acc) * (p.in_scale * w.scales[static_cast<size_t>(r)]) + w.bias[static_cast<size_t>(r)];
  return p.relu ? std::max(0.0f, y) : y;  // ReLU(NaN) is 0, as the tiles' vector max gives it
}

}  // namespace

void int8_gemv_reference(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, uint8_t* out) {
  const float inv_out = 1.0f / p.out_scale;
  for (int64_t r = 0; r < w.rows; ++r) out[r] = quantize_u8(row_value(w, x, r, p), inv_out, p.out_zero_point);
}

void int8_gemv_float_reference(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, float* out) {
  for (int64_t r = 0; r < w.rows; ++r) out[r] = row_value(w, x, r, p);
}

void int8_gemm_reference(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, uint8_t* out) {
  SHRINK_CHECK(n >= 0, "int8 GEMM: row count must be >= 0, got ", n);
  for (int64_t i = 0; i < n; ++i) int8_gemv_reference(w, x + i * w.cols, p, out + i * w.rows);
}

void int8_gemm_float_reference(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p,
                               float* out) {
  SHRINK_CHECK(n >= 0, "int8 GEMM: row count must be >= 0, got ", n);
  for (int64_t i = 0; i < n; ++i) int8_gemv_float_reference(w, x + i * w.cols, p, out + i * w.rows);
}

void dynamic_input_qparams(float min, float max, bool reduce_range, float* scale, int32_t* zero_point) {
  // As LibTorch's dynamic int8 Linear chooses them for quint8 (fbgemm's ChooseQuantizationParams):
  // the range widened to hold 0, a scale too small to invert set to 0.1, a floor of 6.1e-5 on the
  // scale, the zero point from the nearer end.
  constexpr int32_t qmin = 0;
  const int32_t qmax = reduce_range ? 127 : 255;
  constexpr float kSmallScale = 6.1e-5f;
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);
  double s = (static_cast<double>(max) - min) / (qmax - qmin);
  if (static_cast<float>(s) == 0.0f || std::isinf(1.0f / static_cast<float>(s))) s = 0.1;
  if (s < kSmallScale) {
    const float original = static_cast<float>(s);
    s = kSmallScale;
    if (min == 0.0f) {
      max = kSmallScale * (qmax - qmin);
    } else if (max == 0.0f) {
      min = -kSmallScale * (qmax - qmin);
    } else {
      min *= kSmallScale / original;
      max *= kSmallScale / original;
    }
  }
  const double from_min = qmin - min / s, from_max = qmax - max / s;
  const double error_min = std::abs(qmin) - std::abs(min / s), error_max = std::abs(qmax) - std::abs(max / s);
  const double initial = error_min < error_max ? from_min : from_max;
  int32_t zp = qmin;
  if (initial > qmax) {
    zp = qmax;
  } else if (initial >= qmin) {
    zp = static_cast<int32_t>(std::nearbyint(initial));
  }
  *scale = static_cast<float>(s);
  *zero_point = zp;
}

}  // namespace shrink::runtime
