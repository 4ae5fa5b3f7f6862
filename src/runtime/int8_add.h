// shrink's own int8 residual add, relu?(a + b) over quint8 values of one scale each, requantized to
// the output's: what LibTorch's quantized::add(_relu) computes, for where it is gone or not asked
// for. A scalar reference and AVX2 / AVX-512 paths equal to it byte for byte.
#pragma once

#include <cstdint>

#include "runtime/quantize_row.h"

namespace shrink::runtime {

struct Int8AddParams {
  float a_scale = 1.0f;
  int32_t a_zero_point = 0;
  float b_scale = 1.0f;
  int32_t b_zero_point = 0;
  float out_scale = 1.0f;
  int32_t out_zero_point = 0;
  bool relu = false;
};

// out[i] = quantize(relu?(a_scale · (a[i] − a_zp) + b_scale · (b[i] − b_zp))), `n` values each,
// shared out over ATen's intra-op threads; on the fastest path this CPU has, or on `path` (an Error
// when the CPU lacks it).
void int8_add(const uint8_t* a, const uint8_t* b, int64_t n, const Int8AddParams& p, uint8_t* out);
void int8_add(const uint8_t* a, const uint8_t* b, int64_t n, const Int8AddParams& p, uint8_t* out, VectorPath path);

}  // namespace shrink::runtime
