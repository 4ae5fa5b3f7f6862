// The int8 Linear's specification: rows of quint8 activations times symmetric int8 weights,
// requantized (static layers) or dequantized (dynamic), as a plain scalar reference that the
// convolution's tiles (int8_linear.h) equal on every path; and the quint8 parameters LibTorch's
// dynamic Linear picks for its input.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/quantize_row.h"

namespace shrink::runtime {

// Weights [rows, cols] int8 with zero point 0 (symmetric), one scale per row (or one for all).
struct Int8GemvWeights {
  std::vector<int8_t> values;     // row-major
  std::vector<int32_t> row_sums;  // Σ_k w[r][k], for the input zero point's correction
  std::vector<float> scales;      // per row
  std::vector<float> bias;        // per row
  int64_t rows = 0, cols = 0;
};

// What one call computes: out[r] = requantize(in_scale · scale[r] · Σ_k (x[k] − in_zp) w[r][k] + bias[r]).
struct Int8GemvParams {
  float in_scale = 1.0f;
  int32_t in_zero_point = 0;
  float out_scale = 1.0f;
  int32_t out_zero_point = 0;
  bool relu = false;
};

// x: `cols` quint8 values; out: `rows` quint8 values.
void int8_gemv_reference(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, uint8_t* out);
// The same sums dequantized, for dynamic layers: out[r] = in_scale · scale[r] · Σ_k (x[k] − in_zp)
// w[r][k] + bias[r] (ReLU optional) as float; out_scale and out_zero_point are not used.
void int8_gemv_float_reference(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, float* out);
// `n` input rows (each `cols` quint8, one after another) through the same weights: out holds n ×
// `rows` values, what n GEMVs give.
void int8_gemm_reference(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, uint8_t* out);
void int8_gemm_float_reference(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p,
                               float* out);

// The quint8 scale and zero point LibTorch's dynamic int8 Linear picks for an input row whose
// values span [min, max]: [0, 255], or [0, 127] under reduce_range (for kernels whose int8 sums
// may saturate).
void dynamic_input_qparams(float min, float max, bool reduce_range, float* scale, int32_t* zero_point);

}  // namespace shrink::runtime
