// Float to quint8 as ATen quantizes (zero point + round half to even of x / scale, clamped): one
// value (every int8 kernel's requantization ends an output there) and whole rows, the inputs of
// shrink's int8 Linear, with the range a dynamic layer picks its parameters from. Each has a plain
// scalar reference and AVX2 / AVX-512 paths tested against it byte for byte.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/cpu_features.h"
#include "runtime/vector_path.h"

#ifdef SHRINK_X86
#include <immintrin.h>
#endif

namespace shrink::runtime {

// One float to quint8: zero point + nearbyint(y · inv_scale), clamped to [0, 255]. The product is
// first clamped to ±256 (beyond that every zero point saturates): the conversion stays defined for
// infinities and huge values, which then saturate as ATen's (FBGEMM's) quantizer does, and NaN
// becomes -256, so 0 as ATen gives it. The vector paths clamp the same way (max, then min, with
// the product first: NaN takes the bound).
inline uint8_t quantize_u8(float y, float inv_scale, int32_t zero_point) {
  const float v = std::min(256.0f, std::max(-256.0f, y * inv_scale));
#ifdef SHRINK_X86
  // cvtss2si rounds in the current mode (to nearest even by default), as nearbyint does, without
  // the library call nearbyint is below SSE4.1.
  const int32_t r = _mm_cvtss_si32(_mm_set_ss(v));
#else
  const int32_t r = static_cast<int32_t>(std::nearbyint(v));
#endif
  return static_cast<uint8_t>(std::min(255, std::max(0, r + zero_point)));
}

#ifdef SHRINK_X86
// quantize_u8 on 16 (AVX-512) or 8 (AVX2) floats, for the vector paths of every kernel that ends in
// quint8: the levels plus the zero point as int32, not yet clamped to [0, 255] (the caller packs
// with saturation or clamps).
__attribute__((target("avx512f"), always_inline)) inline __m512i quantize_levels_avx512(__m512 y, __m512 inv,
                                                                                        __m512i zero_point) {
  const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(y, inv), _mm512_set1_ps(-256.0f)), _mm512_set1_ps(256.0f));
  return _mm512_add_epi32(_mm512_cvtps_epi32(v), zero_point);
}
__attribute__((target("avx2"), always_inline)) inline __m256i quantize_levels_avx2(__m256 y, __m256 inv,
                                                                                   __m256i zero_point) {
  const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(y, inv), _mm256_set1_ps(-256.0f)), _mm256_set1_ps(256.0f));
  return _mm256_add_epi32(_mm256_cvtps_epi32(v), zero_point);
}

// quantize_levels_* floored at `floor` (0, or the zero point where a ReLU comes first), for kernels
// that store with saturation above: only the upper clamp stays. A product below −256, −∞ or NaN
// (min returns its second operand then) converts to at most −256 or to INT_MIN, below 0 with any
// zero point, where the floor lifts it. A ReLU before quantizing is the floor at the zero point
// after it: rounding is monotone and keeps 0, and NaN, which the ReLU makes 0, ends there too.
__attribute__((target("avx512f"), always_inline)) inline __m512i quantize_floored_avx512(__m512 y, __m512 inv,
                                                                                         __m512i zero_point,
                                                                                         __m512i floor) {
  const __m512i levels = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_set1_ps(256.0f), _mm512_mul_ps(y, inv)));
  return _mm512_max_epi32(_mm512_add_epi32(levels, zero_point), floor);
}
__attribute__((target("avx2"), always_inline)) inline __m256i quantize_floored_avx2(__m256 y, __m256 inv,
                                                                                    __m256i zero_point, __m256i floor) {
  const __m256i levels = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_set1_ps(256.0f), _mm256_mul_ps(y, inv)));
  return _mm256_max_epi32(_mm256_add_epi32(levels, zero_point), floor);
}

// Four vectors of levels (quantize_levels_*, or quantize_floored_*, whose values below 0 packs
// saturates) to 64 (AVX-512) or 32 (AVX2) bytes in order, saturated to [0, 255]: packs then packus interleave the
// vectors' 4-byte groups per 128-bit lane, and a permutation puts them back. One full store instead of narrowing stores
// (vpmovdb to memory is slow on Zen 4).
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i pack_levels_avx512(__m512i q0, __m512i q1,
                                                                                             __m512i q2, __m512i q3) {
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i bytes = _mm512_packus_epi16(_mm512_packs_epi32(q0, q1), _mm512_packs_epi32(q2, q3));
  return _mm512_permutexvar_epi32(order, bytes);
}
__attribute__((target("avx2"), always_inline)) inline __m256i pack_levels_avx2(__m256i q0, __m256i q1, __m256i q2,
                                                                               __m256i q3) {
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3)),
                                     order);
}
#endif

// n floats to quint8, each as quantize_u8(x[i], 1 / scale, zero_point).
void quantize_row(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* out);
// One path by name (tests compare each with the reference); an Error when the CPU lacks it.
void quantize_row(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* out, VectorPath path);

// The smallest and largest of n floats, NaN skipped (0 and 0 when n is 0 or every value is NaN):
// the range LibTorch's dynamic int8 Linear quantizes its input over.
struct FloatRange {
  float min = 0.0f, max = 0.0f;
};
FloatRange float_range(const float* x, int64_t n);
FloatRange float_range(const float* x, int64_t n, VectorPath path);

}  // namespace shrink::runtime
