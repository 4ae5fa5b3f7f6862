// The fused ReLU + 2x2 max pooling kernel and its autograd function.
#include "runtime/relu_max_pool.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/max_pool2d.h>
#include <ATen/ops/relu.h>
#include <c10/util/BFloat16.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/cpu_features.h"

#ifdef SHRINK_X86
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "core/error.h"

namespace shrink::runtime {
namespace {

// A window's code: which of its four inputs (row-major) the maximum came from, or kNoGradient when
// ReLU zeroed the maximum, so no gradient reaches the window.
constexpr uint8_t kNoGradient = 4;

// Planes (N·C) a thread takes at least: a plane of the first zoo conv block is 28x28.
constexpr int64_t kPlaneGrain = 16;

// ReLU as at::relu computes it: NaN stays NaN, and -0 stays -0 (as MAXPS(0, v) leaves it).
template <class A>
inline A relu(A v) {
  return v < A(0) ? A(0) : v;
}

// LibTorch's max pooling scan: a later value wins when greater, or when it is NaN.
template <class A>
inline void take(A v, uint8_t k, A& best, uint8_t& at) {
  if (v > best || std::isnan(v)) {
    best = v;
    at = k;
  }
}

// bfloat16 compares as float (exactly); float and double as themselves.
template <class T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <class T>
void forward_plane(const T* x, int64_t h, int64_t w, T* out, uint8_t* codes) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t i = 0; i < ho; ++i) {
    const T* r0 = x + 2 * i * w;
    const T* r1 = r0 + w;
    for (int64_t j = 0; j < wo; ++j) {
      using A = Acc<T>;
      A best = relu(static_cast<A>(r0[2 * j]));
      uint8_t at = 0;
      take(relu(static_cast<A>(r0[2 * j + 1])), 1, best, at);
      take(relu(static_cast<A>(r1[2 * j])), 2, best, at);
      take(relu(static_cast<A>(r1[2 * j + 1])), 3, best, at);
      out[i * wo + j] = static_cast<T>(best);
      // ReLU's backward passes the gradient where its output is not <= 0 (NaN passes).
      if (codes) codes[i * wo + j] = best <= A(0) ? kNoGradient : at;
    }
  }
}

template <class T>
void backward_plane(const T* grad_out, const uint8_t* codes, int64_t h, int64_t w, T* grad_in) {
  const int64_t ho = h / 2, wo = w / 2;
  const T zero = static_cast<T>(0.0f);
  for (int64_t i = 0; i < ho; ++i) {
    T* r0 = grad_in + 2 * i * w;
    T* r1 = r0 + w;
    for (int64_t j = 0; j < wo; ++j) {
      const T g = grad_out[i * wo + j];
      const uint8_t c = codes[i * wo + j];
      r0[2 * j] = c == 0 ? g : zero;
      r0[2 * j + 1] = c == 1 ? g : zero;
      r1[2 * j] = c == 2 ? g : zero;
      r1[2 * j + 1] = c == 3 ? g : zero;
    }
    if (w % 2) r0[w - 1] = r1[w - 1] = zero;  // the column pooling leaves out
  }
  if (h % 2) std::fill(grad_in + (h - 1) * w, grad_in + h * w, zero);  // and the row
}

#ifdef SHRINK_X86
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns about its own AVX-512 headers (their _mm512_undefined_* values initialise
// themselves, GCC bug 105593) wherever those intrinsics inline into these kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define SHRINK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// 16 values under a mask as floats (lanes outside it read as 0): bfloat16 is a float's upper half,
// so its floats are exact and compare as the reference compares them.
SHRINK_AVX512 inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
SHRINK_AVX512 inline __m512 load16(const c10::BFloat16* p, __mmask16 m) {
  const __m512i halves = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(halves, 16));
}

// The inverse, for floats that are bfloat16 values (or 0): their upper halves. A NaN is stored as
// c10::BFloat16(float) stores it, the canonical 0x7FC0, where `canonical_nan` (a forward output,
// which the reference converts from float), and as it came otherwise (a gradient, copied).
SHRINK_AVX512 inline void store16(float* p, __mmask16 m, __m512 v, bool) { _mm512_mask_storeu_ps(p, m, v); }
SHRINK_AVX512 inline void store16(c10::BFloat16* p, __mmask16 m, __m512 v, bool canonical_nan) {
  __m512i bits = _mm512_srli_epi32(_mm512_castps_si512(v), 16);
  if (canonical_nan)
    bits = _mm512_mask_mov_epi32(bits, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
  _mm256_mask_storeu_epi16(p, m, _mm512_cvtepi32_epi16(bits));
}

// ReLU of 32 consecutive inputs (lanes outside the masks read as 0), split into even and odd columns.
template <class T>
SHRINK_AVX512 inline void relu_columns(const T* r, __mmask16 m_lo, __mmask16 m_hi, __m512& even, __m512& odd) {
  const __m512i pick_even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i pick_odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 lo = load16(r, m_lo);
  const __m512 hi = load16(r + 16, m_hi);
  even = _mm512_max_ps(_mm512_setzero_ps(), _mm512_permutex2var_ps(lo, pick_even, hi));
  odd = _mm512_max_ps(_mm512_setzero_ps(), _mm512_permutex2var_ps(lo, pick_odd, hi));
}

// The inverse: even and odd columns stored interleaved as 32 consecutive outputs, under the masks.
template <class T>
SHRINK_AVX512 inline void interleave_columns(T* r, __mmask16 m_lo, __mmask16 m_hi, __m512 even, __m512 odd) {
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  store16(r, m_lo, _mm512_permutex2var_ps(even, first, odd), false);
  store16(r + 16, m_hi, _mm512_permutex2var_ps(even, second, odd), false);
}

// g in the lanes whose window code is k, 0 elsewhere.
SHRINK_AVX512 inline __m512 gradient_where(__m512i codes, int k, __m512 g) {
  return _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(codes, _mm512_set1_epi32(k)), g);
}

// Lane masks for n (<= 16) windows of a row: their outputs, and the 2n inputs in two loads of 16.
struct Masks16 {
  __mmask16 out, lo, hi;
};
inline Masks16 row_masks16(int64_t n) {
  const auto first = [](int64_t count) { return static_cast<__mmask16>((1u << count) - 1); };
  return {first(n), first(std::min<int64_t>(2 * n, 16)), first(std::max<int64_t>(2 * n - 16, 0))};
}

// Sixteen windows of one output row a step, the row's tail under masks (the zoo's rows are 14 and
// 7 windows wide). Even and odd columns are split with permutes; the scan, NaN rule and codes are
// the reference's, lane by lane. MAXPS returns its second operand for NaN, as at::relu does.
// float, or bfloat16 compared as floats (what autocast's bf16 training pools).
template <class T>
SHRINK_AVX512 void forward_plane_avx512(const T* x, int64_t h, int64_t w, T* out, uint8_t* codes) {
  const int64_t ho = h / 2, wo = w / 2;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t i = 0; i < ho; ++i) {
    const T* r0 = x + 2 * i * w;
    const T* r1 = r0 + w;
    for (int64_t j = 0; j < wo; j += 16) {
      const Masks16 m = row_masks16(std::min<int64_t>(16, wo - j));
      __m512 v[4];
      relu_columns(r0 + 2 * j, m.lo, m.hi, v[0], v[1]);
      relu_columns(r1 + 2 * j, m.lo, m.hi, v[2], v[3]);
      __m512 best = v[0];
      __m512i at = _mm512_setzero_si512();
      for (int k = 1; k < 4; ++k) {
        const __mmask16 take =
            _mm512_cmp_ps_mask(v[k], best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v[k], v[k], _CMP_UNORD_Q);
        best = _mm512_mask_mov_ps(best, take, v[k]);
        at = _mm512_mask_mov_epi32(at, take, _mm512_set1_epi32(k));
      }
      store16(out + i * wo + j, m.out, best, true);
      if (codes) {
        at = _mm512_mask_mov_epi32(at, _mm512_cmp_ps_mask(best, zero, _CMP_LE_OQ), _mm512_set1_epi32(kNoGradient));
        _mm512_mask_cvtepi32_storeu_epi8(codes + i * wo + j, m.out, at);
      }
    }
  }
}

template <class T>
SHRINK_AVX512 void backward_plane_avx512(const T* grad_out, const uint8_t* codes, int64_t h, int64_t w, T* grad_in) {
  const int64_t ho = h / 2, wo = w / 2;
  const T zero = static_cast<T>(0.0f);
  for (int64_t i = 0; i < ho; ++i) {
    T* r0 = grad_in + 2 * i * w;
    T* r1 = r0 + w;
    for (int64_t j = 0; j < wo; j += 16) {
      const Masks16 m = row_masks16(std::min<int64_t>(16, wo - j));
      const __m512 g = load16(grad_out + i * wo + j, m.out);
      const __m512i c = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m.out, codes + i * wo + j));
      interleave_columns(r0 + 2 * j, m.lo, m.hi, gradient_where(c, 0, g), gradient_where(c, 1, g));
      interleave_columns(r1 + 2 * j, m.lo, m.hi, gradient_where(c, 2, g), gradient_where(c, 3, g));
    }
    if (w % 2) r0[w - 1] = r1[w - 1] = zero;
  }
  if (h % 2) std::fill(grad_in + (h - 1) * w, grad_in + h * w, zero);
}

#define SHRINK_AVX2 __attribute__((target("avx2")))

// Lanes [0, count) of an 8-lane mask.
SHRINK_AVX2 inline __m256i first_lanes(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// row_masks16 for eight windows.
struct Masks8 {
  __m256i out, lo, hi;
};
SHRINK_AVX2 inline Masks8 row_masks8(int64_t n) {
  return {first_lanes(n), first_lanes(std::min<int64_t>(2 * n, 8)), first_lanes(2 * n - 8)};
}

// relu_columns with eight windows: 16 inputs, lanes outside the masks read as 0.
SHRINK_AVX2 inline void relu_columns8(const float* r, __m256i m_lo, __m256i m_hi, __m256& even, __m256& odd) {
  const __m256 lo = _mm256_maskload_ps(r, m_lo);
  const __m256 hi = _mm256_maskload_ps(r + 8, m_hi);
  // shuffle_ps works within 128-bit halves; the 64-bit permute puts the halves back in order.
  const __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
  const __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
  even = _mm256_max_ps(_mm256_setzero_ps(), _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8)));
  odd = _mm256_max_ps(_mm256_setzero_ps(), _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xD8)));
}

// interleave_columns with eight windows.
SHRINK_AVX2 inline void interleave_columns8(float* r, __m256i m_lo, __m256i m_hi, __m256 even, __m256 odd) {
  const __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
  _mm256_maskstore_ps(r, m_lo, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_maskstore_ps(r + 8, m_hi, _mm256_permute2f128_ps(lo, hi, 0x31));
}

// g in the lanes whose window code is k, 0 elsewhere.
SHRINK_AVX2 inline __m256 gradient_where8(__m256i codes, int k, __m256 g) {
  return _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(codes, _mm256_set1_epi32(k))));
}

SHRINK_AVX2 void forward_plane_avx2(const float* x, int64_t h, int64_t w, float* out, uint8_t* codes) {
  const int64_t ho = h / 2, wo = w / 2;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t i = 0; i < ho; ++i) {
    const float* r0 = x + 2 * i * w;
    const float* r1 = r0 + w;
    for (int64_t j = 0; j < wo; j += 8) {
      const int64_t n = std::min<int64_t>(8, wo - j);
      const Masks8 m = row_masks8(n);
      __m256 v[4];
      relu_columns8(r0 + 2 * j, m.lo, m.hi, v[0], v[1]);
      relu_columns8(r1 + 2 * j, m.lo, m.hi, v[2], v[3]);
      __m256 best = v[0];
      __m256i at = _mm256_setzero_si256();
      for (int k = 1; k < 4; ++k) {
        const __m256 take =
            _mm256_or_ps(_mm256_cmp_ps(v[k], best, _CMP_GT_OQ), _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
        best = _mm256_blendv_ps(best, v[k], take);
        at = _mm256_blendv_epi8(at, _mm256_set1_epi32(k), _mm256_castps_si256(take));
      }
      _mm256_maskstore_ps(out + i * wo + j, m.out, best);
      if (codes) {
        const __m256 none = _mm256_cmp_ps(best, zero, _CMP_LE_OQ);
        at = _mm256_blendv_epi8(at, _mm256_set1_epi32(kNoGradient), _mm256_castps_si256(none));
        alignas(32) int32_t c[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(c), at);
        for (int64_t k = 0; k < n; ++k) codes[i * wo + j + k] = static_cast<uint8_t>(c[k]);
      }
    }
  }
}

SHRINK_AVX2 void backward_plane_avx2(const float* grad_out, const uint8_t* codes, int64_t h, int64_t w,
                                     float* grad_in) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t i = 0; i < ho; ++i) {
    float* r0 = grad_in + 2 * i * w;
    float* r1 = r0 + w;
    for (int64_t j = 0; j < wo; j += 8) {
      const int64_t n = std::min<int64_t>(8, wo - j);
      const Masks8 m = row_masks8(n);
      const __m256 g = _mm256_maskload_ps(grad_out + i * wo + j, m.out);
      uint64_t packed = 0;
      std::memcpy(&packed, codes + i * wo + j, static_cast<size_t>(n));
      const __m256i c = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(packed)));
      interleave_columns8(r0 + 2 * j, m.lo, m.hi, gradient_where8(c, 0, g), gradient_where8(c, 1, g));
      interleave_columns8(r1 + 2 * j, m.lo, m.hi, gradient_where8(c, 2, g), gradient_where8(c, 3, g));
    }
    if (w % 2) r0[w - 1] = r1[w - 1] = 0.0f;
  }
  if (h % 2) std::fill(grad_in + (h - 1) * w, grad_in + h * w, 0.0f);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// The kernel a dtype and path run: float takes either vector one, bfloat16 the AVX-512 one (bf16
// training needs AVX-512: train/precision.h), every other type and path the reference.
template <class T>
void forward_kernel(VectorPath kernel, const T* x, int64_t h, int64_t w, T* out, uint8_t* codes) {
#ifdef SHRINK_X86
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, c10::BFloat16>) {
    if (kernel == VectorPath::kAvx512) return forward_plane_avx512(x, h, w, out, codes);
  }
  if constexpr (std::is_same_v<T, float>) {
    if (kernel == VectorPath::kAvx2) return forward_plane_avx2(x, h, w, out, codes);
  }
#endif
  forward_plane(x, h, w, out, codes);
}

template <class T>
void backward_kernel(VectorPath kernel, const T* grad_out, const uint8_t* codes, int64_t h, int64_t w, T* grad_in) {
#ifdef SHRINK_X86
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, c10::BFloat16>) {
    if (kernel == VectorPath::kAvx512) return backward_plane_avx512(grad_out, codes, h, w, grad_in);
  }
  if constexpr (std::is_same_v<T, float>) {
    if (kernel == VectorPath::kAvx2) return backward_plane_avx2(grad_out, codes, h, w, grad_in);
  }
#endif
  backward_plane(grad_out, codes, h, w, grad_in);
}

// out and, when `with_codes`, one code a window.
std::pair<at::Tensor, at::Tensor> fused_forward(const at::Tensor& x, bool with_codes, VectorPath kernel) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto out = at::empty({n, c, h / 2, w / 2}, x.options());
  at::Tensor codes;
  if (with_codes) codes = at::empty({n, c, h / 2, w / 2}, x.options().dtype(at::kByte));
  const int64_t plane_in = h * w, plane_out = (h / 2) * (w / 2);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "relu_max_pool2x2", [&] {
    const scalar_t* px = x.data_ptr<scalar_t>();
    scalar_t* po = out.data_ptr<scalar_t>();
    uint8_t* pc = with_codes ? codes.data_ptr<uint8_t>() : nullptr;
    at::parallel_for(0, n * c, kPlaneGrain, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        forward_kernel(kernel, px + p * plane_in, h, w, po + p * plane_out, pc ? pc + p * plane_out : nullptr);
      }
    });
  });
  return {out, codes};
}

at::Tensor fused_backward(const at::Tensor& grad_out, const at::Tensor& codes, int64_t h, int64_t w,
                          VectorPath kernel) {
  const auto g = grad_out.contiguous();
  const int64_t n = g.size(0), c = g.size(1);
  auto grad_in = at::empty({n, c, h, w}, g.options());
  const int64_t plane_in = h * w, plane_out = (h / 2) * (w / 2);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, g.scalar_type(), "relu_max_pool2x2_backward", [&] {
    const scalar_t* pg = g.data_ptr<scalar_t>();
    const uint8_t* pc = codes.data_ptr<uint8_t>();
    scalar_t* pi = grad_in.data_ptr<scalar_t>();
    at::parallel_for(0, n * c, kPlaneGrain, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        backward_kernel(kernel, pg + p * plane_out, pc + p * plane_out, h, w, pi + p * plane_in);
      }
    });
  });
  return grad_in;
}

struct ReluMaxPool2x2 : torch::autograd::Function<ReluMaxPool2x2> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, VectorPath kernel) {
    auto [out, codes] = fused_forward(x, true, kernel);
    ctx->save_for_backward({codes});
    ctx->saved_data["h"] = x.size(2);
    ctx->saved_data["w"] = x.size(3);
    ctx->saved_data["kernel"] = static_cast<int64_t>(kernel);
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto codes = ctx->get_saved_variables()[0];
    const auto kernel = static_cast<VectorPath>(ctx->saved_data["kernel"].toInt());
    return {fused_backward(grads[0], codes, ctx->saved_data["h"].toInt(), ctx->saved_data["w"].toInt(), kernel),
            at::Tensor()};
  }
};

}  // namespace

bool is_max_pool2x2(const torch::nn::MaxPool2dOptions& o) {
  const auto all = [](const auto& a, int64_t v) { return (*a)[0] == v && (*a)[1] == v; };
  return all(o.kernel_size(), 2) && all(o.stride(), 2) && all(o.padding(), 0) && all(o.dilation(), 1) && !o.ceil_mode();
}

bool relu_max_pool2x2_fuses(const at::Tensor& x) {
  return x.device().is_cpu() && x.layout() == at::kStrided && x.dim() == 4 &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kDouble) &&
         x.is_contiguous() && x.size(2) >= 2 && x.size(3) >= 2;
}

at::Tensor relu_max_pool2x2(const at::Tensor& x) {
  static const VectorPath best = best_vector_path();
  return relu_max_pool2x2(x, best);
}

at::Tensor relu_max_pool2x2(const at::Tensor& x, VectorPath kernel) {
  check_vector_path(kernel, "relu_max_pool2x2");
  // Every argument spelled out: quantized max pooling refuses defaulted ones.
  if (!relu_max_pool2x2_fuses(x)) return at::max_pool2d(at::relu(x), {2, 2}, {2, 2}, {0, 0}, {1, 1}, false);
  if (torch::autograd::GradMode::is_enabled() && x.requires_grad()) return ReluMaxPool2x2::apply(x, kernel);
  return fused_forward(x, false, kernel).first;
}

}  // namespace shrink::runtime
