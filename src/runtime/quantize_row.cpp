// Float rows to quint8 and their range: the scalar reference and the AVX2 / AVX-512 paths.
#include "runtime/quantize_row.h"

#include <limits>

#include "core/error.h"

namespace shrink::runtime {

namespace {

void quantize_reference(const float* x, int64_t n, float inv, int32_t zero_point, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = quantize_u8(x[i], inv, zero_point);
}

// What nothing but NaN (or nothing) leaves: min > max.
FloatRange finish_range(float lo, float hi) { return lo > hi ? FloatRange{} : FloatRange{lo, hi}; }

FloatRange range_reference(const float* x, int64_t n) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int64_t i = 0; i < n; ++i) {
    // Comparisons with NaN are false: NaN is skipped.
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  return finish_range(lo, hi);
}

#ifdef SHRINK_X86

// 32 values a step, the rest as the reference.
__attribute__((target("avx2"))) void quantize_avx2(const float* x, int64_t n, float inv, int32_t zero_point,
                                                   uint8_t* out) {
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256i zp = _mm256_set1_epi32(zero_point);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = quantize_levels_avx2(_mm256_loadu_ps(x + i + 8 * j), vinv, zp);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), pack_levels_avx2(q[0], q[1], q[2], q[3]));
  }
  quantize_reference(x + i, n - i, inv, zero_point, out + i);
}

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns about its own AVX-512 headers (their _mm512_undefined_* values initialise
// themselves, GCC bug 105593) wherever those intrinsics inline into these kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// 64 values a step; the last 0–63 16 at a time under a mask.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void quantize_avx512(const float* x, int64_t n, float inv,
                                                                          int32_t zero_point, uint8_t* out) {
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512i zp = _mm512_set1_epi32(zero_point), zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512i q[4];
    for (int j = 0; j < 4; ++j) q[j] = quantize_levels_avx512(_mm512_loadu_ps(x + i + 16 * j), vinv, zp);
    _mm512_storeu_si512(out + i, pack_levels_avx512(q[0], q[1], q[2], q[3]));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512i q = quantize_levels_avx512(_mm512_maskz_loadu_ps(m, x + i), vinv, zp);
    _mm512_mask_cvtepi32_storeu_epi8(out + i, m, _mm512_min_epi32(_mm512_max_epi32(q, zero), top));
  }
}

// min_ps(x, acc) returns acc where x is NaN: NaN is skipped, as in the reference.
__attribute__((target("avx2"))) FloatRange range_avx2(const float* x, int64_t n) {
  const float inf = std::numeric_limits<float>::infinity();
  __m256 lo = _mm256_set1_ps(inf), hi = _mm256_set1_ps(-inf);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    lo = _mm256_min_ps(v, lo);
    hi = _mm256_max_ps(v, hi);
  }
  alignas(32) float los[8], his[8];
  _mm256_store_ps(los, lo);
  _mm256_store_ps(his, hi);
  float l = *std::min_element(los, los + 8), h = *std::max_element(his, his + 8);
  for (; i < n; ++i) {
    if (x[i] < l) l = x[i];
    if (x[i] > h) h = x[i];
  }
  return finish_range(l, h);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) FloatRange range_avx512(const float* x, int64_t n) {
  const float inf = std::numeric_limits<float>::infinity();
  __m512 lo = _mm512_set1_ps(inf), hi = _mm512_set1_ps(-inf);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    lo = _mm512_mask_min_ps(lo, m, v, lo);
    hi = _mm512_mask_max_ps(hi, m, v, hi);
  }
  return finish_range(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif

}  // namespace

void quantize_row(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* out) {
  quantize_row(x, n, scale, zero_point, out, best_vector_path());
}

void quantize_row(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* out, VectorPath path) {
  check_vector_path(path, "quantize_row");
  const float inv = 1.0f / scale;
  switch (path) {
#ifdef SHRINK_X86
    case VectorPath::kAvx2:
      return quantize_avx2(x, n, inv, zero_point, out);
    case VectorPath::kAvx512:
      return quantize_avx512(x, n, inv, zero_point, out);
#endif
    default:
      return quantize_reference(x, n, inv, zero_point, out);
  }
}

FloatRange float_range(const float* x, int64_t n) { return float_range(x, n, best_vector_path()); }

FloatRange float_range(const float* x, int64_t n, VectorPath path) {
  check_vector_path(path, "float_range");
  switch (path) {
#ifdef SHRINK_X86
    case VectorPath::kAvx2:
      return range_avx2(x, n);
    case VectorPath::kAvx512:
      return range_avx512(x, n);
#endif
    default:
      return range_reference(x, n);
  }
}

}  // namespace shrink::runtime
