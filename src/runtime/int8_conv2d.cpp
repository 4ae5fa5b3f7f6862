// Int8 Conv2d: a direct scalar reference, and an AVX-512 VNNI path that reads an output row's
// inputs in place (channels in fours) or lowers the row (input bytes gathered into [pixels, k],
// padding as the input zero point), then multiplies them by the weights, a few pixels by up to 64
// output channels per register tile.
#include "runtime/int8_conv2d.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

#include "core/cpu_features.h"
#include "core/error.h"

#ifdef SHRINK_X86
#include <immintrin.h>
#endif

namespace shrink::runtime {

using core::cat;

namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// The one requantization every path ends an output with: the GEMV's, operation for operation, so
// the vector paths equal the reference exactly.
inline uint8_t requantize(int32_t acc, float mult, float bias, bool relu, float inv_out, int32_t out_zero_point) {
  const float y = static_cast<float>(acc) * mult + bias;
  return quantize_u8(relu ? std::max(y, 0.0f) : y, inv_out, out_zero_point);
}

// in_scale · scale[oc], as the reference multiplies them.
std::vector<float> multipliers(const Int8ConvWeights& w, const Int8GemvParams& p) {
  std::vector<float> m(w.scales.size());
  for (size_t i = 0; i < m.size(); ++i) m[i] = p.in_scale * w.scales[i];
  return m;
}

}  // namespace

Int8ConvWeights pack_int8_conv2d(const Conv2dGeometry& g, const int8_t* weight, const std::vector<float>& scales,
                                 const std::vector<float>& bias) {
  SHRINK_CHECK(g.groups == 1, "shrink's int8 Conv2d takes groups 1, got ", g.groups);
  SHRINK_CHECK(g.in_channels > 0 && g.out_channels > 0, "int8 Conv2d channels must be > 0, got ", g.in_channels,
               " in and ", g.out_channels, " out");
  SHRINK_CHECK(g.kernel.size() == 2 && g.stride.size() == 2 && g.padding.size() == 2 && g.dilation.size() == 2,
               "int8 Conv2d needs two kernel, stride, padding and dilation sizes");
  for (int d = 0; d < 2; ++d) {
    SHRINK_CHECK(g.kernel[d] > 0 && g.stride[d] > 0 && g.dilation[d] > 0 && g.padding[d] >= 0,
                 "int8 Conv2d sizes out of range: kernel ", g.kernel[d], ", stride ", g.stride[d], ", dilation ",
                 g.dilation[d], ", padding ", g.padding[d]);
  }
  const int64_t oc = g.out_channels, c = g.in_channels, kh = g.kernel[0], kw = g.kernel[1];
  SHRINK_CHECK(scales.size() == 1 || static_cast<int64_t>(scales.size()) == oc, "int8 Conv2d needs 1 or ", oc,
               " weight scales, got ", scales.size());
  SHRINK_CHECK(static_cast<int64_t>(bias.size()) == oc, "int8 Conv2d needs ", oc, " biases, got ", bias.size());
  Int8ConvWeights w;
  w.geometry = g;
  w.k = kh * kw * c;
  w.values.resize(static_cast<size_t>(oc * w.k));
  w.sums.assign(static_cast<size_t>(oc), 0);
  for (int64_t o = 0; o < oc; ++o) {
    for (int64_t i = 0; i < kh; ++i) {
      for (int64_t j = 0; j < kw; ++j) {
        for (int64_t ci = 0; ci < c; ++ci) {
          const int8_t v = weight[((o * c + ci) * kh + i) * kw + j];
          w.values[static_cast<size_t>(o * w.k + (i * kw + j) * c + ci)] = v;
          w.sums[static_cast<size_t>(o)] += v;
        }
      }
    }
  }
  w.scales = scales.size() == 1 ? std::vector<float>(static_cast<size_t>(oc), scales[0]) : scales;
  w.bias = bias;
  const int64_t oc16 = round_up(oc, 16), k4 = (w.k + 3) / 4;
  w.quads.assign(static_cast<size_t>(k4 * oc16 * 4), 0);
  for (int64_t o = 0; o < oc; ++o) {
    for (int64_t k = 0; k < w.k; ++k) {
      const int8_t v = w.values[static_cast<size_t>(o * w.k + k)];
      w.quads[static_cast<size_t>(((k / 4) * oc16 + o) * 4 + k % 4)] = v;
    }
  }
  return w;
}

std::array<int64_t, 2> int8_conv2d_output_size(const Conv2dGeometry& g, int64_t height, int64_t width) {
  std::array<int64_t, 2> out{};
  const int64_t in[2] = {height, width};
  for (int d = 0; d < 2; ++d) {
    const int64_t span = g.dilation[d] * (g.kernel[d] - 1) + 1;
    SHRINK_CHECK(in[d] + 2 * g.padding[d] >= span, "int8 Conv2d input of ", height, "x", width,
                 " is smaller than its kernel's span ", span, " (padding ", g.padding[d], ")");
    out[d] = (in[d] + 2 * g.padding[d] - span) / g.stride[d] + 1;
  }
  return out;
}

void int8_conv2d_reference(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                           const Int8GemvParams& p, uint8_t* out) {
  const auto& g = w.geometry;
  const auto [oh_n, ow_n] = int8_conv2d_output_size(g, height, width);
  const int64_t c = g.in_channels, oc_n = g.out_channels, kh = g.kernel[0], kw = g.kernel[1];
  const auto mult = multipliers(w, p);
  const float inv_out = 1.0f / p.out_scale;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * height * width * c;
    for (int64_t oh = 0; oh < oh_n; ++oh) {
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        uint8_t* pixel = out + ((n * oh_n + oh) * ow_n + ow) * oc_n;
        for (int64_t o = 0; o < oc_n; ++o) {
          int32_t acc = 0;
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t ih = oh * g.stride[0] - g.padding[0] + i * g.dilation[0];
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t iw = ow * g.stride[1] - g.padding[1] + j * g.dilation[1];
              const bool inside = ih >= 0 && ih < height && iw >= 0 && iw < width;
              for (int64_t ci = 0; ci < c; ++ci) {
                const int32_t v = inside ? image[(ih * width + iw) * c + ci] : p.in_zero_point;
                acc += v * w.values[static_cast<size_t>(o * w.k + (i * kw + j) * c + ci)];
              }
            }
          }
          acc -= p.in_zero_point * w.sums[static_cast<size_t>(o)];
          pixel[o] = requantize(acc, mult[static_cast<size_t>(o)], w.bias[static_cast<size_t>(o)], p.relu, inv_out,
                                p.out_zero_point);
        }
      }
    }
  }
}

#ifdef SHRINK_X86
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns about its own AVX-512 headers (their _mm512_undefined_* values initialise
// themselves, GCC bug 105593) wherever those intrinsics inline into these kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace {

// `c` input values from `src` to `dst`. Lowering serves inputs whose channels are not a multiple
// of four (a first layer's one or three): those are copied with plain stores, since a memcpy call
// a tap cost more than the multiplications.
inline void copy_tap(const uint8_t* src, int64_t c, uint8_t* dst) {
  switch (c) {
    case 3:
      dst[2] = src[2];
      [[fallthrough]];
    case 2:
      dst[1] = src[1];
      [[fallthrough]];
    case 1:
      dst[0] = src[0];
      return;
    default:
      std::memcpy(dst, src, static_cast<size_t>(c));
  }
}

// Output row `oh` of one image lowered: row ow of `a` (stride `lda`) holds the kh·kw·C inputs of
// output pixel ow in the weights' order, the input zero point where the window leaves the image,
// the bytes after k left as they are (zero from allocation; their weights are zero). A kernel
// position at a time, over the pixels that see the image at all, so the inner loop has no bounds
// tests.
void lower_row(const Int8ConvWeights& w, const uint8_t* image, int64_t height, int64_t width, int64_t oh, int64_t ow_n,
               int32_t zero_point, uint8_t* a, int64_t lda) {
  const auto& g = w.geometry;
  const int64_t c = g.in_channels, kh = g.kernel[0], kw = g.kernel[1], stride = g.stride[1];
  const auto pad = static_cast<uint8_t>(zero_point);
  for (int64_t i = 0; i < kh; ++i) {
    const int64_t ih = oh * g.stride[0] - g.padding[0] + i * g.dilation[0];
    for (int64_t j = 0; j < kw; ++j) {
      // Pixel ow reads column ow · stride + offset: inside the image for ow in [lo, hi).
      const int64_t offset = j * g.dilation[1] - g.padding[1];
      int64_t lo = 0, hi = 0;
      if (ih >= 0 && ih < height && offset < width) {
        lo = std::min(ow_n, offset >= 0 ? 0 : (-offset + stride - 1) / stride);
        hi = std::max(lo, std::min(ow_n, (width - 1 - offset) / stride + 1));
      }
      uint8_t* col = a + (i * kw + j) * c;
      const uint8_t* src = lo < hi ? image + ih * width * c : image;
      if (c == 1) {
        for (int64_t ow = 0; ow < lo; ++ow) col[ow * lda] = pad;
        for (int64_t ow = lo; ow < hi; ++ow) col[ow * lda] = src[ow * stride + offset];
        for (int64_t ow = hi; ow < ow_n; ++ow) col[ow * lda] = pad;
      } else {
        for (int64_t ow = 0; ow < lo; ++ow) std::fill(col + ow * lda, col + ow * lda + c, pad);
        for (int64_t ow = lo; ow < hi; ++ow) copy_tap(src + (ow * stride + offset) * c, c, col + ow * lda);
        for (int64_t ow = hi; ow < ow_n; ++ow) std::fill(col + ow * lda, col + ow * lda + c, pad);
      }
    }
  }
}

constexpr int kPixels = 6;  // pixels per register tile: 6 × 4 accumulators + 4 weights fit 32 zmm

// Where a VNNI tile reads its inputs: pixel p's inputs for tap t (a kernel position) start at
// ptrs[p · taps + t], `quads` groups of four channels each. An input with channels in fours is
// read in place (a tap a kernel position, the zero point's row where the window leaves the image);
// a lowered row is one tap of k rounded up to four.
struct Taps {
  const uint8_t* const* ptrs;
  int64_t taps, quads;
};

// How a tile's sums become outputs: output channels [og, og + count) of a group, their weight
// sums, multipliers and biases from og on, pixel p's outputs at out + p · out_stride.
struct Requantization {
  const int32_t* sums;
  const float* mult;
  const float* bias;
  int64_t count;
  int32_t in_zero_point, out_zero_point;
  float inv_out;
  bool relu;
  uint8_t* out;
  int64_t out_stride;
};

// P pixels from `first` by NB blocks of 16 output channels: the sums over taps and quads of
// dot(input quad, weights[quad][channel][0..3]), requantized in the registers with the
// reference's float operations and stored.
template <int NB, int P>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void tile_avx512_vnni(const Taps& in, int64_t first,
                                                                                      const int8_t* quads,
                                                                                      int64_t quad_stride,
                                                                                      const Requantization& r) {
  __m512i c[P][NB];
  for (int p = 0; p < P; ++p)
    for (int b = 0; b < NB; ++b) c[p][b] = _mm512_setzero_si512();
  for (int64_t t = 0; t < in.taps; ++t) {
    const uint8_t* src[P];
    for (int p = 0; p < P; ++p) src[p] = in.ptrs[(first + p) * in.taps + t];
    const int8_t* wt = quads + t * in.quads * quad_stride;
    for (int64_t q = 0; q < in.quads; ++q) {
      __m512i wv[NB];
      for (int b = 0; b < NB; ++b) wv[b] = _mm512_loadu_si512(wt + q * quad_stride + b * 64);
      for (int p = 0; p < P; ++p) {
        int32_t four;
        std::memcpy(&four, src[p] + q * 4, 4);
        const __m512i av = _mm512_set1_epi32(four);
        for (int b = 0; b < NB; ++b) c[p][b] = _mm512_dpbusd_epi32(c[p][b], av, wv[b]);
      }
    }
  }
  const __m512i zp_out = _mm512_set1_epi32(r.out_zero_point), lo = _mm512_setzero_si512(), hi = _mm512_set1_epi32(255);
  const __m512 inv = _mm512_set1_ps(r.inv_out), zero = _mm512_setzero_ps();
  for (int b = 0; b < NB; ++b) {
    const int64_t left = r.count - b * 16;
    if (left <= 0) break;
    const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    const __m512i correction =
        _mm512_mullo_epi32(_mm512_set1_epi32(r.in_zero_point), _mm512_maskz_loadu_epi32(m, r.sums + b * 16));
    const __m512 mv = _mm512_maskz_loadu_ps(m, r.mult + b * 16), bv = _mm512_maskz_loadu_ps(m, r.bias + b * 16);
    for (int p = 0; p < P; ++p) {
      __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c[p][b], correction)), mv), bv);
      if (r.relu) y = _mm512_max_ps(y, zero);
      __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(y, inv)), zp_out);
      q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
      _mm512_mask_cvtepi32_storeu_epi8(r.out + (first + p) * r.out_stride + b * 16, m, q);
    }
  }
}

template <int NB>
void tiles_avx512_vnni(const Taps& in, int64_t pixels, const int8_t* quads, int64_t quad_stride,
                       const Requantization& r) {
  int64_t px = 0;
  for (; px + kPixels <= pixels; px += kPixels) tile_avx512_vnni<NB, kPixels>(in, px, quads, quad_stride, r);
  for (; px < pixels; ++px) tile_avx512_vnni<NB, 1>(in, px, quads, quad_stride, r);
}

// One output row on AVX-512 VNNI, 64 output channels at a time.
void row_avx512_vnni(const Int8ConvWeights& w, const Taps& in, int64_t ow_n, const Int8GemvParams& p, const float* mult,
                     float inv_out, uint8_t* out) {
  const int64_t oc_n = w.geometry.out_channels, oc16 = round_up(oc_n, 16);
  for (int64_t og = 0; og < oc_n; og += 64) {
    const Requantization r{w.sums.data() + og,
                           mult + og,
                           w.bias.data() + og,
                           std::min<int64_t>(64, oc_n - og),
                           p.in_zero_point,
                           p.out_zero_point,
                           inv_out,
                           p.relu,
                           out + og,
                           oc_n};
    const int8_t* quads = w.quads.data() + og * 4;
    switch (std::min<int64_t>(4, (oc16 - og) / 16)) {
      case 4:
        tiles_avx512_vnni<4>(in, ow_n, quads, oc16 * 4, r);
        break;
      case 3:
        tiles_avx512_vnni<3>(in, ow_n, quads, oc16 * 4, r);
        break;
      case 2:
        tiles_avx512_vnni<2>(in, ow_n, quads, oc16 * 4, r);
        break;
      default:
        tiles_avx512_vnni<1>(in, ow_n, quads, oc16 * 4, r);
    }
  }
}

// Pixel ow's input for each kernel position of output row `oh`, read in place (channels in fours).
void tap_pointers(const Conv2dGeometry& g, const uint8_t* image, int64_t height, int64_t width, int64_t oh,
                  int64_t ow_n, const uint8_t* zero_point_row, const uint8_t** ptrs) {
  const int64_t c = g.in_channels, kh = g.kernel[0], kw = g.kernel[1];
  for (int64_t ow = 0; ow < ow_n; ++ow) {
    for (int64_t i = 0; i < kh; ++i) {
      const int64_t ih = oh * g.stride[0] - g.padding[0] + i * g.dilation[0];
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t iw = ow * g.stride[1] - g.padding[1] + j * g.dilation[1];
        const bool inside = ih >= 0 && ih < height && iw >= 0 && iw < width;
        *ptrs++ = inside ? image + (ih * width + iw) * c : zero_point_row;
      }
    }
  }
}

// Output rows [begin, end) of the batch (row r: image r / oh_n, row r % oh_n) on AVX-512 VNNI.
void rows_avx512_vnni(const Int8ConvWeights& w, const uint8_t* x, int64_t height, int64_t width,
                      const Int8GemvParams& p, const float* mult, uint8_t* out, int64_t begin, int64_t end) {
  const auto& g = w.geometry;
  const auto [oh_n, ow_n] = int8_conv2d_output_size(g, height, width);
  const int64_t c = g.in_channels, oc_n = g.out_channels, taps = g.kernel[0] * g.kernel[1];
  const float inv_out = 1.0f / p.out_scale;
  const bool in_place = c % 4 == 0;
  const int64_t lda = round_up(w.k, 4);
  std::vector<uint8_t> lowered(in_place ? 0 : static_cast<size_t>(ow_n * lda));
  std::vector<uint8_t> zero_point_row(in_place ? static_cast<size_t>(c) : 0, static_cast<uint8_t>(p.in_zero_point));
  std::vector<const uint8_t*> ptrs(static_cast<size_t>(in_place ? ow_n * taps : ow_n));
  if (!in_place) {
    for (int64_t ow = 0; ow < ow_n; ++ow) ptrs[static_cast<size_t>(ow)] = lowered.data() + ow * lda;
  }
  const Taps in{ptrs.data(), in_place ? taps : 1, in_place ? c / 4 : lda / 4};
  for (int64_t r = begin; r < end; ++r) {
    const uint8_t* image = x + (r / oh_n) * height * width * c;
    if (in_place) {
      tap_pointers(g, image, height, width, r % oh_n, ow_n, zero_point_row.data(), ptrs.data());
    } else {
      lower_row(w, image, height, width, r % oh_n, ow_n, p.in_zero_point, lowered.data(), lda);
    }
    row_avx512_vnni(w, in, ow_n, p, mult, inv_out, out + r * ow_n * oc_n);
  }
}

}  // namespace
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

bool int8_conv2d_has_fast_path() { return int8_path_available(Int8Path::kAvx512Vnni); }

void int8_conv2d(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                 const Int8GemvParams& p, uint8_t* out, Int8Path path) {
  SHRINK_CHECK(int8_path_available(path), "int8 Conv2d: this CPU lacks the ", int8_path_name(path), " path");
  SHRINK_CHECK(path == Int8Path::kReference || path == Int8Path::kAvx512Vnni, "int8 Conv2d has no ",
               int8_path_name(path), " path (only reference and avx512_vnni)");
  if (path == Int8Path::kReference) return int8_conv2d_reference(w, x, batch, height, width, p, out);
#ifdef SHRINK_X86
  const auto [oh_n, ow_n] = int8_conv2d_output_size(w.geometry, height, width);
  const auto mult = multipliers(w, p);
  // Enough rows a task to be worth a thread: ~256k multiply-adds.
  const int64_t row_macs = std::max<int64_t>(1, ow_n * w.geometry.out_channels * w.k);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / row_macs);
  at::parallel_for(0, batch * oh_n, grain, [&](int64_t begin, int64_t end) {
    rows_avx512_vnni(w, x, height, width, p, mult.data(), out, begin, end);
  });
#endif
}

void int8_conv2d(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                 const Int8GemvParams& p, uint8_t* out) {
  int8_conv2d(w, x, batch, height, width, p, out,
              int8_conv2d_has_fast_path() ? Int8Path::kAvx512Vnni : Int8Path::kReference);
}

}  // namespace shrink::runtime
