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

enum class QuantizeRowPath { kReference, kAvx2, kAvx512 };
std::string path_name(QuantizeRowPath path);
bool quantize_row_has_path(QuantizeRowPath path);
// The fastest path this CPU has (under SHRINK_MAX_CPU_ISA's cap).
QuantizeRowPath best_quantize_row_path();

// n floats to quint8, each as quantize_u8(x[i], 1 / scale, zero_point).
void quantize_row(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* out);
// One path by name (tests compare each with the reference); an Error when the CPU lacks it.
void quantize_row(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* out, QuantizeRowPath path);

// The smallest and largest of n floats, NaN skipped (0 and 0 when n is 0 or every value is NaN):
// the range LibTorch's dynamic int8 Linear quantizes its input over.
struct FloatRange {
  float min = 0.0f, max = 0.0f;
};
FloatRange float_range(const float* x, int64_t n);
FloatRange float_range(const float* x, int64_t n, QuantizeRowPath path);

}  // namespace shrink::runtime
