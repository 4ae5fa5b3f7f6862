// Batch-1 int8 GEMV: scalar reference, an AVX2 kernel (u8 and s8 widened to s16, pairwise
// multiply-add into s32: no intermediate saturation, unlike maddubs) and VNNI kernels.
#include "runtime/int8_gemv.h"

#include <algorithm>
#include <cmath>

#include "core/cpu_features.h"
#include "core/error.h"

#ifdef SHRINK_X86
#include <immintrin.h>
#endif

namespace shrink::runtime {

namespace {

// What each row's corrected integer sum becomes: the float output (dynamic layers), or that float
// requantized to quint8 (static layers). Every path ends each row through one of these.
struct FloatStore {
  float* out;
  float value(int32_t acc, int64_t r, const Int8GemvWeights& w, const Int8GemvParams& p) const {
    const float y =
        static_cast<float>(acc) * (p.in_scale * w.scales[static_cast<size_t>(r)]) + w.bias[static_cast<size_t>(r)];
    return p.relu ? std::max(0.0f, y) : y;  // ReLU(NaN) is 0 on every path, as a vector max gives it
  }
  void operator()(int32_t acc, int64_t r, const Int8GemvWeights& w, const Int8GemvParams& p) const {
    out[r] = value(acc, r, w, p);
  }
};
struct QuantizedStore {
  uint8_t* out;
  float inv_out;
  void operator()(int32_t acc, int64_t r, const Int8GemvWeights& w, const Int8GemvParams& p) const {
    out[r] = quantize_u8(FloatStore{nullptr}.value(acc, r, w, p), inv_out, p.out_zero_point);
  }
};

// Row r from column `from` on: adds the scalar products to `acc` (what the vector loop summed),
// corrects for the input zero point and stores the row.
template <class X, class Store>
void finish_row(const Int8GemvWeights& w, const X* x, int64_t from, int32_t acc, int64_t r, const Int8GemvParams& p,
                const Store& store) {
  const int8_t* row = w.values.data() + r * w.cols;
  for (int64_t k = from; k < w.cols; ++k) acc += static_cast<int32_t>(x[k]) * static_cast<int32_t>(row[k]);
  acc -= p.in_zero_point * w.row_sums[static_cast<size_t>(r)];
  store(acc, r, w, p);
}

template <class Store>
void gemv_reference(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, const Store& store) {
  for (int64_t r = 0; r < w.rows; ++r) finish_row(w, x, 0, 0, r, p, store);
}

}  // namespace

void int8_gemv_reference(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, uint8_t* out) {
  gemv_reference(w, x, p, QuantizedStore{out, 1.0f / p.out_scale});
}

void int8_gemv_float_reference(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, float* out) {
  gemv_reference(w, x, p, FloatStore{out});
}

#ifdef SHRINK_X86
namespace {

// The horizontal sums of four row accumulators, in row order, into `acc` (16-byte aligned).
__attribute__((target("avx2"), always_inline)) inline void sum_rows4(__m256i a0, __m256i a1, __m256i a2, __m256i a3,
                                                                     int32_t* acc) {
  const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
  _mm_store_si128(reinterpret_cast<__m128i*>(acc),
                  _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)));
}

template <class Store>
__attribute__((target("avx2"))) void gemv_avx2(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p,
                                               const Store& store) {
  const int64_t cols = w.cols, vec_cols = cols / 16 * 16;
  // The input widened to s16 once, reused by every row.
  alignas(32) int16_t x16_stack[2048];
  std::vector<int16_t> x16_heap;
  int16_t* x16 = x16_stack;
  if (cols > 2048) {
    x16_heap.resize(static_cast<size_t>(cols));
    x16 = x16_heap.data();
  }
  for (int64_t k = 0; k < cols; ++k) x16[k] = static_cast<int16_t>(x[k]);
  int64_t r = 0;
  // Four rows at a time: each input load feeds four multiply-adds.
  for (; r + 4 <= w.rows; r += 4) {
    const int8_t* w0 = w.values.data() + r * cols;
    const int8_t* w1 = w0 + cols;
    const int8_t* w2 = w1 + cols;
    const int8_t* w3 = w2 + cols;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t k = 0; k < vec_cols; k += 16) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x16 + k));
      a0 = _mm256_add_epi32(
          a0, _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w0 + k)))));
      a1 = _mm256_add_epi32(
          a1, _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w1 + k)))));
      a2 = _mm256_add_epi32(
          a2, _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w2 + k)))));
      a3 = _mm256_add_epi32(
          a3, _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w3 + k)))));
    }
    alignas(16) int32_t acc[4];
    sum_rows4(a0, a1, a2, a3, acc);
    for (int j = 0; j < 4; ++j) finish_row(w, x16, vec_cols, acc[j], r + j, p, store);
  }
  for (; r < w.rows; ++r) finish_row(w, x16, 0, 0, r, p, store);
}

// AVX-VNNI: u8 × s8 products summed four at a time straight into s32 (no widening, no saturation).
template <class Store>
__attribute__((target("avx2,avxvnni"))) void gemv_avx_vnni(const Int8GemvWeights& w, const uint8_t* x,
                                                           const Int8GemvParams& p, const Store& store) {
  const int64_t cols = w.cols, vec_cols = cols / 32 * 32;
  int64_t r = 0;
  for (; r + 4 <= w.rows; r += 4) {
    const int8_t* w0 = w.values.data() + r * cols;
    const int8_t* w1 = w0 + cols;
    const int8_t* w2 = w1 + cols;
    const int8_t* w3 = w2 + cols;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t k = 0; k < vec_cols; k += 32) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k));
      a0 = _mm256_dpbusd_avx_epi32(a0, xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + k)));
      a1 = _mm256_dpbusd_avx_epi32(a1, xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w1 + k)));
      a2 = _mm256_dpbusd_avx_epi32(a2, xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w2 + k)));
      a3 = _mm256_dpbusd_avx_epi32(a3, xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w3 + k)));
    }
    alignas(16) int32_t acc[4];
    sum_rows4(a0, a1, a2, a3, acc);
    for (int j = 0; j < 4; ++j) finish_row(w, x, vec_cols, acc[j], r + j, p, store);
  }
  for (; r < w.rows; ++r) finish_row(w, x, 0, 0, r, p, store);
}

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns about its own AVX-512 headers (their _mm512_undefined_* values initialise
// themselves, GCC bug 105593) wherever those intrinsics inline into these kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// The bytes of a row's last, partial 64 columns; 0 when the row is whole 64s.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __mmask64 tail_mask(int64_t cols) {
  const int64_t rest = cols % 64;
  return _cvtu64_mask64(rest == 0 ? 0 : ~uint64_t{0} >> (64 - rest));
}

// The horizontal sums of four accumulators, in order, into `acc`: pairs interleaved and added
// within each 128-bit lane, then the four lanes added (13 instructions for four sums).
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) inline void sum_rows4_512(__m512i a0, __m512i a1,
                                                                                              __m512i a2, __m512i a3,
                                                                                              int32_t* acc) {
  const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
  const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
  const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
  const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(acc),
                   _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
}

// AVX-512 VNNI: the same dot products sixteen lanes wide (Cascade Lake and later Xeons, Zen 4).
template <class Store>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void gemv_avx512_vnni(const Int8GemvWeights& w,
                                                                                      const uint8_t* x,
                                                                                      const Int8GemvParams& p,
                                                                                      const Store& store) {
  const int64_t cols = w.cols, vec_cols = cols / 64 * 64;
  // The last columns through masked loads: the bytes past the row read as zeros, adding nothing.
  const __mmask64 tail = tail_mask(cols);
  int64_t r = 0;
  for (; r + 4 <= w.rows; r += 4) {
    const int8_t* w0 = w.values.data() + r * cols;
    const int8_t* w1 = w0 + cols;
    const int8_t* w2 = w1 + cols;
    const int8_t* w3 = w2 + cols;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t k = 0; k < vec_cols; k += 64) {
      const __m512i xv = _mm512_loadu_si512(x + k);
      a0 = _mm512_dpbusd_epi32(a0, xv, _mm512_loadu_si512(w0 + k));
      a1 = _mm512_dpbusd_epi32(a1, xv, _mm512_loadu_si512(w1 + k));
      a2 = _mm512_dpbusd_epi32(a2, xv, _mm512_loadu_si512(w2 + k));
      a3 = _mm512_dpbusd_epi32(a3, xv, _mm512_loadu_si512(w3 + k));
    }
    if (vec_cols < cols) {
      const __m512i xv = _mm512_maskz_loadu_epi8(tail, x + vec_cols);
      a0 = _mm512_dpbusd_epi32(a0, xv, _mm512_maskz_loadu_epi8(tail, w0 + vec_cols));
      a1 = _mm512_dpbusd_epi32(a1, xv, _mm512_maskz_loadu_epi8(tail, w1 + vec_cols));
      a2 = _mm512_dpbusd_epi32(a2, xv, _mm512_maskz_loadu_epi8(tail, w2 + vec_cols));
      a3 = _mm512_dpbusd_epi32(a3, xv, _mm512_maskz_loadu_epi8(tail, w3 + vec_cols));
    }
    int32_t acc[4];
    sum_rows4_512(a0, a1, a2, a3, acc);
    for (int j = 0; j < 4; ++j) finish_row(w, x, cols, acc[j], r + j, p, store);
  }
  for (; r < w.rows; ++r) finish_row(w, x, 0, 0, r, p, store);
}

// Four input rows at a time against four weight rows: each weight load feeds four products and
// each input load four, sixteen accumulators in registers. Rows left over go through the GEMV.
template <class StoreOf>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void gemm_avx512_vnni(const Int8GemvWeights& w,
                                                                                      const uint8_t* x, int64_t n,
                                                                                      const Int8GemvParams& p,
                                                                                      const StoreOf& store_of) {
  const int64_t cols = w.cols, vec_cols = cols / 64 * 64;
  const __mmask64 tail = tail_mask(cols);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint8_t* xs[4] = {x + i * cols, x + (i + 1) * cols, x + (i + 2) * cols, x + (i + 3) * cols};
    const auto s0 = store_of(i), s1 = store_of(i + 1), s2 = store_of(i + 2), s3 = store_of(i + 3);
    int64_t r = 0;
    for (; r + 4 <= w.rows; r += 4) {
      const int8_t* w0 = w.values.data() + r * cols;
      __m512i acc[4][4];
      for (auto& row : acc) {
        for (auto& a : row) a = _mm512_setzero_si512();
      }
      for (int64_t k = 0; k < cols; k += 64) {
        // The last columns through masked loads, as the GEMV's.
        const __mmask64 m = k < vec_cols ? _cvtu64_mask64(~uint64_t{0}) : tail;
        const __m512i x0 = _mm512_maskz_loadu_epi8(m, xs[0] + k), x1 = _mm512_maskz_loadu_epi8(m, xs[1] + k),
                      x2 = _mm512_maskz_loadu_epi8(m, xs[2] + k), x3 = _mm512_maskz_loadu_epi8(m, xs[3] + k);
        for (int j = 0; j < 4; ++j) {
          const __m512i wv = _mm512_maskz_loadu_epi8(m, w0 + j * cols + k);
          acc[0][j] = _mm512_dpbusd_epi32(acc[0][j], x0, wv);
          acc[1][j] = _mm512_dpbusd_epi32(acc[1][j], x1, wv);
          acc[2][j] = _mm512_dpbusd_epi32(acc[2][j], x2, wv);
          acc[3][j] = _mm512_dpbusd_epi32(acc[3][j], x3, wv);
        }
      }
      int32_t sums[4][4];
      for (int a = 0; a < 4; ++a) sum_rows4_512(acc[a][0], acc[a][1], acc[a][2], acc[a][3], sums[a]);
      for (int j = 0; j < 4; ++j) {
        finish_row(w, xs[0], cols, sums[0][j], r + j, p, s0);
        finish_row(w, xs[1], cols, sums[1][j], r + j, p, s1);
        finish_row(w, xs[2], cols, sums[2][j], r + j, p, s2);
        finish_row(w, xs[3], cols, sums[3][j], r + j, p, s3);
      }
    }
    for (; r < w.rows; ++r) {
      finish_row(w, xs[0], 0, 0, r, p, s0);
      finish_row(w, xs[1], 0, 0, r, p, s1);
      finish_row(w, xs[2], 0, 0, r, p, s2);
      finish_row(w, xs[3], 0, 0, r, p, s3);
    }
  }
  for (; i < n; ++i) gemv_avx512_vnni(w, x + i * cols, p, store_of(i));
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}  // namespace
#endif

bool int8_gemv_has_fast_path() { return best_int8_path() != Int8Path::kReference; }

namespace {

template <class Store>
void gemv_on(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, const Store& store, Int8Path path) {
  SHRINK_CHECK(int8_path_available(path), "int8 GEMV: this CPU lacks the ", int8_path_name(path), " path");
#ifdef SHRINK_X86
  if (path == Int8Path::kAvx512Vnni) return gemv_avx512_vnni(w, x, p, store);
  if (path == Int8Path::kAvxVnni) return gemv_avx_vnni(w, x, p, store);
  if (path == Int8Path::kAvx2) return gemv_avx2(w, x, p, store);
#endif
  gemv_reference(w, x, p, store);
}

}  // namespace

void int8_gemv(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, uint8_t* out, Int8Path path) {
  gemv_on(w, x, p, QuantizedStore{out, 1.0f / p.out_scale}, path);
}

void int8_gemv(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, uint8_t* out) {
  int8_gemv(w, x, p, out, best_int8_path());
}

void int8_gemv_float(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, float* out, Int8Path path) {
  gemv_on(w, x, p, FloatStore{out}, path);
}

void int8_gemv_float(const Int8GemvWeights& w, const uint8_t* x, const Int8GemvParams& p, float* out) {
  int8_gemv_float(w, x, p, out, best_int8_path());
}

namespace {

// `n` GEMVs on one path; AVX-512 VNNI shares each weight load among four input rows.
template <class StoreOf>
void gemm_on(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, const StoreOf& store_of,
             Int8Path path) {
  SHRINK_CHECK(n >= 0, "int8 GEMM: row count must be >= 0, got ", n);
#ifdef SHRINK_X86
  if (path == Int8Path::kAvx512Vnni) {
    SHRINK_CHECK(int8_path_available(path), "int8 GEMM: this CPU lacks the ", int8_path_name(path), " path");
    return gemm_avx512_vnni(w, x, n, p, store_of);
  }
#endif
  for (int64_t i = 0; i < n; ++i) gemv_on(w, x + i * w.cols, p, store_of(i), path);
}

}  // namespace

void int8_gemm_reference(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) int8_gemv_reference(w, x + i * w.cols, p, out + i * w.rows);
}

void int8_gemm(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, uint8_t* out,
               Int8Path path) {
  const float inv_out = 1.0f / p.out_scale;
  gemm_on(
      w, x, n, p,
      [&](int64_t i) {
        return QuantizedStore{out + i * w.rows, inv_out};
      },
      path);
}

void int8_gemm(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, uint8_t* out) {
  int8_gemm(w, x, n, p, out, best_int8_path());
}

void int8_gemm_float_reference(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p,
                               float* out) {
  for (int64_t i = 0; i < n; ++i) int8_gemv_float_reference(w, x + i * w.cols, p, out + i * w.rows);
}

void int8_gemm_float(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, float* out,
                     Int8Path path) {
  gemm_on(
      w, x, n, p, [&](int64_t i) { return FloatStore{out + i * w.rows}; }, path);
}

void int8_gemm_float(const Int8GemvWeights& w, const uint8_t* x, int64_t n, const Int8GemvParams& p, float* out) {
  int8_gemm_float(w, x, n, p, out, best_int8_path());
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
