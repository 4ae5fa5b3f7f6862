// The int8 residual add: dequantize both sides, add, requantize as every shrink int8 kernel does;
// the scalar reference and AVX2 / AVX-512 paths that equal it.
#include "runtime/int8_add.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace shrink::runtime {

namespace {

void add_reference(const uint8_t* a, const uint8_t* b, int64_t n, const Int8AddParams& p, float inv_out, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float y = p.a_scale * static_cast<float>(static_cast<int32_t>(a[i]) - p.a_zero_point) +
                    p.b_scale * static_cast<float>(static_cast<int32_t>(b[i]) - p.b_zero_point);
    out[i] = quantize_u8(p.relu ? std::max(y, 0.0f) : y, inv_out, p.out_zero_point);
  }
}

#ifdef SHRINK_X86

// One side's eight values dequantized: scale · (x − zero point).
__attribute__((target("avx2"), always_inline)) inline __m256 side_avx2(const uint8_t* x, float scale,
                                                                       int32_t zero_point) {
  const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x)));
  return _mm256_mul_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(_mm256_sub_epi32(v, _mm256_set1_epi32(zero_point))));
}

// The reference's float operations on eight values, in its order (no fused multiply-add: this file
// is compiled with -ffp-contract=off); the levels before the clamp to [0, 255].
__attribute__((target("avx2"), always_inline)) inline __m256i add_levels_avx2(const uint8_t* a, const uint8_t* b,
                                                                              const Int8AddParams& p, __m256 inv) {
  __m256 y = _mm256_add_ps(side_avx2(a, p.a_scale, p.a_zero_point), side_avx2(b, p.b_scale, p.b_zero_point));
  if (p.relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
  return quantize_levels_avx2(y, inv, _mm256_set1_epi32(p.out_zero_point));
}

// 32 values a step; the rest as the reference.
__attribute__((target("avx2"))) void add_avx2(const uint8_t* a, const uint8_t* b, int64_t n, const Int8AddParams& p,
                                              float inv_out, uint8_t* out) {
  const __m256 inv = _mm256_set1_ps(inv_out);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = add_levels_avx2(a + i + 8 * j, b + i + 8 * j, p, inv);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), pack_levels_avx2(q[0], q[1], q[2], q[3]));
  }
  add_reference(a + i, b + i, n - i, p, inv_out, out + i);
}

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns about its own AVX-512 headers (their _mm512_undefined_* values initialise
// themselves, GCC bug 105593) wherever those intrinsics inline into these kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// Sixteen values (from 16 bytes of each side) to levels, as the reference computes them.
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline __m512i add_levels_avx512(
    __m128i a16, __m128i b16, const Int8AddParams& p, __m512 inv) {
  const __m512 ya =
      _mm512_mul_ps(_mm512_set1_ps(p.a_scale),
                    _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(a16), _mm512_set1_epi32(p.a_zero_point))));
  const __m512 yb =
      _mm512_mul_ps(_mm512_set1_ps(p.b_scale),
                    _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(b16), _mm512_set1_epi32(p.b_zero_point))));
  __m512 y = _mm512_add_ps(ya, yb);
  if (p.relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
  return quantize_levels_avx512(y, inv, _mm512_set1_epi32(p.out_zero_point));
}

// 64 values a step; the last 0–63 16 at a time under a mask.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void add_avx512(const uint8_t* a, const uint8_t* b, int64_t n,
                                                                     const Int8AddParams& p, float inv_out,
                                                                     uint8_t* out) {
  const __m512 inv = _mm512_set1_ps(inv_out);
  const __m512i zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512i q[4];
    for (int j = 0; j < 4; ++j) {
      q[j] = add_levels_avx512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 16 * j)),
                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 16 * j)), p, inv);
    }
    _mm512_storeu_si512(out + i, pack_levels_avx512(q[0], q[1], q[2], q[3]));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512i q = add_levels_avx512(_mm_maskz_loadu_epi8(m, a + i), _mm_maskz_loadu_epi8(m, b + i), p, inv);
    _mm512_mask_cvtepi32_storeu_epi8(out + i, m, _mm512_min_epi32(_mm512_max_epi32(q, zero), top));
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif

}  // namespace

void int8_add(const uint8_t* a, const uint8_t* b, int64_t n, const Int8AddParams& p, uint8_t* out) {
  int8_add(a, b, n, p, out, best_vector_path());
}

void int8_add(const uint8_t* a, const uint8_t* b, int64_t n, const Int8AddParams& p, uint8_t* out, VectorPath path) {
  check_vector_path(path, "int8 add");
  const float inv_out = 1.0f / p.out_scale;
  // Enough values a task to be worth a thread.
  at::parallel_for(0, n, int64_t{1} << 15, [&](int64_t begin, int64_t end) {
    const uint8_t *x = a + begin, *y = b + begin;
    uint8_t* o = out + begin;
    switch (path) {
#ifdef SHRINK_X86
      case VectorPath::kAvx2:
        return add_avx2(x, y, end - begin, p, inv_out, o);
      case VectorPath::kAvx512:
        return add_avx512(x, y, end - begin, p, inv_out, o);
#endif
      default:
        return add_reference(x, y, end - begin, p, inv_out, o);
    }
  });
}

}  // namespace shrink::runtime
