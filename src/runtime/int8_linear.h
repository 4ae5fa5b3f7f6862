// shrink's int8 Linear on the convolution's tiles: n input rows of `cols` quint8 are an
// n × 1 image of `cols` channels and the Linear a 1×1 convolution over it, so each input quad is
// broadcast against 16 output channels (no horizontal sums; requantization, or for dynamic layers
// dequantization, 16 channels wide).
// Each output equals int8_gemv.h's scalar reference. On 784→300 at 64 rows that ran 1.9x
// (AVX-512 VNNI), 2.0x (AVX2) and 5.2x (AVX-VNNI) faster than the dot-product GEMM it replaced,
// and no slower at one row (docs/quantization.md).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/int8_conv2d.h"

namespace shrink::runtime {

// `weight` [rows][cols] row-major; `scales` one per row (or one for all); `bias` one per row.
Int8ConvWeights pack_int8_linear(const int8_t* weight, int64_t rows, int64_t cols, const std::vector<float>& scales,
                                 const std::vector<float>& bias);

// x: `n` rows of `cols` quint8; out: `n` rows of `rows` quint8. What each output computes is the
// GEMV's: requantize(in_scale · scale[r] · Σ_k (x[k] − in_zp) w[r][k] + bias[r]). On `path`
// (the convolution's: reference, avx2, avx_vnni, avx512_vnni), or the best this CPU has.
void int8_linear(const Int8ConvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, uint8_t* out,
                 Int8Path path);
void int8_linear(const Int8ConvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, uint8_t* out);
// The same rows dequantized: out holds n × rows floats, relu?(in_scale · scale[r] · Σ + bias[r]),
// equal to int8_gemm_float_reference's (dynamic layers).
void int8_linear_float(const Int8ConvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, float* out,
                       Int8Path path);
void int8_linear_float(const Int8ConvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, float* out);

}  // namespace shrink::runtime
