// Int8 Conv2d: a direct scalar reference, and AVX-512 VNNI and AVX2 paths that pad the input rows
// they need with the zero point, then read each output pixel's window in place, a kernel row of
// adjacent bytes at a time, and multiply it by the weights, a few pixels by up to 64 output
// channels per register tile, over runs of output rows. AVX2 has two tiles: one for 7-bit input
// bands (vpmaddubsw, exact there; two quads' 16-bit sums added before they widen where the weights
// cannot overflow them) and one that widens the band to 16 bits (any input).
#include "runtime/int8_conv2d.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "core/cpu_features.h"
#include "core/error.h"
#include "runtime/int8_max_pool.h"
#include "runtime/quantize_row.h"

#ifdef SHRINK_X86
#include <immintrin.h>
#endif

namespace shrink::runtime {

using core::cat;

namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// The one requantization every path ends an output with: the GEMV's, operation for operation, so
// the vector paths equal the reference exactly. The ReLU makes NaN 0, as the vector max does.
inline float dequantize(int32_t acc, float mult, float bias, bool relu) {
  const float y = static_cast<float>(acc) * mult + bias;
  return relu ? std::max(0.0f, y) : y;
}

// Where outputs go: quint8 (static layers) or, where `f` is set, float (dynamic Linear layers).
struct Output {
  uint8_t* q = nullptr;
  float* f = nullptr;
  Output at(int64_t offset) const { return {q ? q + offset : nullptr, f ? f + offset : nullptr}; }
};

// in_scale · scale[oc], as the reference multiplies them.
std::vector<float> multipliers(const Int8ConvWeights& w, const Int8GemvParams& p) {
  std::vector<float> m(w.scales.size());
  for (size_t i = 0; i < m.size(); ++i) m[i] = p.in_scale * w.scales[i];
  return m;
}

// Where byte k of an output channel's weights ([kh][kw][c] order) lies in w.quads for output
// channel 0 (channel o's is 4 · o further): segments follow that order, each rounded up to whole
// quads. Packing places the weights there; AVX2's excess correction reads them back.
int64_t quad_offset(const Int8ConvWeights& w, int64_t k) {
  const int64_t segment_bytes = w.k / w.segments, segment = k / segment_bytes, byte = k % segment_bytes;
  return (segment * w.segment_quads + byte / 4) * round_up(w.geometry.out_channels, 16) * 4 + byte % 4;
}

// Where segment t starts from a pixel's window: input rows down (dilation included), then bytes
// on. Segments follow the weights' order: kernel rows, then kernel positions where they are apart.
std::pair<int64_t, int64_t> segment_start(const Int8ConvWeights& w, int64_t t) {
  const auto& g = w.geometry;
  const int64_t per_row = w.segments / g.kernel[0];
  return {t / per_row * g.dilation[0], t % per_row * g.dilation[1] * g.in_channels};
}

// How many of the quads left a quad tries as its partner: packing a large layer whose weights
// seldom pair stays linear in its quads.
constexpr size_t kPairCandidates = 64;

// Orders each 16-channel block's quads for AVX2's 7-bit tile (Int8ConvWeights::narrow_order). Best
// fit: largest first (by a quad's largest lane sum), each quad pairs with the largest quad left
// beside which every lane stays within kNarrowPairLimit, else is read alone. On the convnet_ptq
// run's trained layers that pairs every quad but those of the first convolution, whose one
// channel puts a channel's largest weights in each quad (pairing the largest with the smallest
// paired half).
void order_narrow_quads(Int8ConvWeights& w) {
  const int64_t oc16 = round_up(w.geometry.out_channels, 16), blocks = oc16 / 16;
  const int64_t total = w.segments * w.segment_quads;
  w.narrow_order.assign(static_cast<size_t>(blocks * total), 0);
  w.narrow_pairs.assign(static_cast<size_t>(blocks), 0);
  w.narrow_singles.assign(static_cast<size_t>(blocks), 0);
  w.narrow_quads.assign(static_cast<size_t>(blocks * total * 64), 0);
  w.narrow_rows.assign(static_cast<size_t>(blocks * total), 0);
  w.narrow_bytes.assign(static_cast<size_t>(blocks * total), 0);
  // A quad's 32 lanes (channel l / 2, bytes 2 · (l % 2) and the next) by sign: [l][positive, negative].
  std::vector<std::array<int16_t, 64>> sums(static_cast<size_t>(total));
  std::vector<int> largest(static_cast<size_t>(total));
  std::vector<int32_t> by_size;
  // No early exit: the loop vectorizes (SSE2), and most tries of weights that seldom pair fail late.
  const auto fits = [&](int32_t a, int32_t b) {
    const auto& x = sums[static_cast<size_t>(a)];
    const auto& y = sums[static_cast<size_t>(b)];
    int16_t over = 0;
    for (size_t i = 0; i < 64; ++i) over |= static_cast<int16_t>(x[i] + y[i] > kNarrowPairLimit);
    return over == 0;
  };
  for (int64_t b = 0; b < blocks; ++b) {
    by_size.clear();
    for (int64_t q = 0; q < total; ++q) {
      const int8_t* v = w.quads.data() + (q * oc16 + b * 16) * 4;
      auto& s = sums[static_cast<size_t>(q)];
      s.fill(0);
      bool zero = true;
      for (int i = 0; i < 64; ++i) {
        s[static_cast<size_t>(2 * (i / 2) + (v[i] < 0))] += static_cast<int16_t>(std::abs(v[i]));
        zero = zero && v[i] == 0;
      }
      largest[static_cast<size_t>(q)] = *std::max_element(s.begin(), s.end());
      if (!zero) by_size.push_back(static_cast<int32_t>(q));
    }
    std::stable_sort(by_size.begin(), by_size.end(), [&](int32_t x, int32_t y) {
      return largest[static_cast<size_t>(x)] < largest[static_cast<size_t>(y)];
    });
    std::vector<int32_t> pairs, singles;
    std::vector<char> taken(by_size.size(), 0);
    for (size_t i = by_size.size(); i-- > 0;) {
      if (taken[i]) continue;
      size_t partner = i, tried = 0;
      for (size_t j = i; j-- > 0 && tried < kPairCandidates;) {
        if (taken[j]) continue;
        ++tried;
        if (fits(by_size[i], by_size[j])) {
          partner = j;
          break;
        }
      }
      taken[i] = taken[partner] = 1;
      if (partner == i) {
        singles.push_back(by_size[i]);
      } else {
        pairs.push_back(by_size[i]);
        pairs.push_back(by_size[partner]);
      }
    }
    w.narrow_pairs[static_cast<size_t>(b)] = static_cast<int64_t>(pairs.size() / 2);
    w.narrow_singles[static_cast<size_t>(b)] = static_cast<int64_t>(singles.size());
    pairs.insert(pairs.end(), singles.begin(), singles.end());
    for (size_t i = 0; i < pairs.size(); ++i) {
      w.narrow_order[static_cast<size_t>(b * total) + i] = pairs[i];
      const auto [rows, bytes] = segment_start(w, pairs[i] / w.segment_quads);
      w.narrow_rows[static_cast<size_t>(b * total) + i] = rows;
      w.narrow_bytes[static_cast<size_t>(b * total) + i] = bytes + pairs[i] % w.segment_quads * 4;
      std::memcpy(w.narrow_quads.data() + (b * total + static_cast<int64_t>(i)) * 64,
                  w.quads.data() + (pairs[i] * oc16 + b * 16) * 4, 64);
    }
  }
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
  const bool rows_adjacent = g.dilation[1] == 1;
  w.segments = rows_adjacent ? kh : kh * kw;
  const int64_t segment_bytes = rows_adjacent ? kw * c : c;
  w.segment_quads = (segment_bytes + 3) / 4;
  const int64_t oc16 = round_up(oc, 16);
  w.quads.assign(static_cast<size_t>(w.segments * w.segment_quads * oc16 * 4), 0);
  for (int64_t k = 0; k < w.k; ++k) {
    const int64_t at = quad_offset(w, k);
    for (int64_t o = 0; o < oc; ++o)
      w.quads[static_cast<size_t>(at + o * 4)] = w.values[static_cast<size_t>(o * w.k + k)];
  }
  order_narrow_quads(w);
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

namespace {

void reference(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
               const Int8GemvParams& p, Output out) {
  const auto& g = w.geometry;
  const auto [oh_n, ow_n] = int8_conv2d_output_size(g, height, width);
  const int64_t c = g.in_channels, oc_n = g.out_channels, kh = g.kernel[0], kw = g.kernel[1];
  const auto mult = multipliers(w, p);
  const float inv_out = 1.0f / p.out_scale;
  for (int64_t n = 0; n < batch; ++n) {
    const uint8_t* image = x + n * height * width * c;
    for (int64_t oh = 0; oh < oh_n; ++oh) {
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        const Output pixel = out.at(((n * oh_n + oh) * ow_n + ow) * oc_n);
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
          const float y = dequantize(acc, mult[static_cast<size_t>(o)], w.bias[static_cast<size_t>(o)], p.relu);
          if (pixel.f) {
            pixel.f[o] = y;
          } else {
            pixel.q[o] = quantize_u8(y, inv_out, p.out_zero_point);
          }
        }
      }
    }
  }
}

}  // namespace

void int8_conv2d_reference(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                           const Int8GemvParams& p, uint8_t* out) {
  reference(w, x, batch, height, width, p, Output{out, nullptr});
}

#ifdef SHRINK_X86
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns about its own AVX-512 headers (their _mm512_undefined_* values initialise
// themselves, GCC bug 105593) wherever those intrinsics inline into these kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace {

// Bytes read past a band's last row: a segment's last quad may reach up to three past its bytes
// (their weights are zero).
constexpr int64_t kBandSlack = 4;

// The input rows that output rows [oh_first, oh_last] of one image read, with the padding around
// them as the input zero point: every window lies inside, so a tile reads its inputs in place
// without bounds tests.
struct PaddedBand {
  std::vector<uint8_t> bytes;
  int64_t first = 0;      // its first row, in padded rows (input row + padding)
  int64_t row_bytes = 0;  // (width + 2 · padding) · C
  const uint8_t* row(int64_t padded_row) const { return bytes.data() + (padded_row - first) * row_bytes; }
};

int64_t band_row_bytes(const Conv2dGeometry& g, int64_t width) { return (width + 2 * g.padding[1]) * g.in_channels; }

void pad_band(const Conv2dGeometry& g, const uint8_t* image, int64_t height, int64_t width, int64_t oh_first,
              int64_t oh_last, uint8_t zero_point, PaddedBand& band) {
  const int64_t c = g.in_channels, pad_w = g.padding[1];
  band.row_bytes = band_row_bytes(g, width);
  band.first = oh_first * g.stride[0];
  const int64_t last = oh_last * g.stride[0] + (g.kernel[0] - 1) * g.dilation[0];
  band.bytes.assign(static_cast<size_t>((last - band.first + 1) * band.row_bytes + kBandSlack), zero_point);
  for (int64_t pr = band.first; pr <= last; ++pr) {
    const int64_t ih = pr - g.padding[0];
    if (ih < 0 || ih >= height) continue;
    std::memcpy(band.bytes.data() + (pr - band.first) * band.row_bytes + pad_w * c, image + ih * width * c,
                static_cast<size_t>(width * c));
  }
}

// Pixels per AVX-512 register tile of NB blocks of 16 channels: 6 × 4 accumulators + 4 weights
// fit 32 zmm; fewer blocks take more pixels, so a narrow layer (a first convolution's 32 channels)
// loads each weight vector for more products.
constexpr int pixels_avx512(int nb) { return nb >= 4 ? 6 : nb == 3 ? 8 : 12; }

// Where a tile reads its inputs: pixel p's window starts at windows[p] in the band, its segment t
// at windows[p] + offsets[t], `quads` groups of four bytes each.
struct Inputs {
  const uint8_t* const* windows;
  const int64_t* offsets;
  int64_t segments, quads;
};

// How a tile's sums become outputs: output channels [og, og + count) of a group, their weight
// sums, multipliers and biases from og on, pixel p's outputs at out + p · out_stride (float
// outputs where out.f is set, not requantized).
struct Requantization {
  const int32_t* sums;
  const float* mult;
  const float* bias;
  int64_t count;
  int32_t in_zero_point, out_zero_point;
  float inv_out;
  bool relu;
  Output out;
  int64_t out_stride;
  // AVX2's 7-bit tile: sums to add to pixel p's where touched[p] is set, from extra + p ·
  // extra_stride (null: none).
  const int32_t* extra = nullptr;
  const uint8_t* touched = nullptr;
  int64_t extra_stride = 0;
};

// P pixels from `first` by NB blocks of 16 output channels: the sums over segments and quads of
// dot(input quad, weights[quad][channel][0..3]), requantized in the registers with the
// reference's float operations and stored. The sums start at the input zero point's correction
// (−zp · Σw), which int32 sums that wrap reach as the reference's do when it subtracts it last.
template <int NB, int P>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void tile_avx512_vnni(const Inputs& in, int64_t first,
                                                                                      const int8_t* quads,
                                                                                      int64_t quad_stride,
                                                                                      const Requantization& r) {
  __mmask16 m[NB];
  __m512i c[P][NB];
  for (int b = 0; b < NB; ++b) {
    const int64_t left = r.count - b * 16;
    m[b] = left >= 16 ? __mmask16(0xFFFF) : left > 0 ? __mmask16((1u << left) - 1) : __mmask16(0);
    const __m512i start =
        _mm512_mullo_epi32(_mm512_set1_epi32(-r.in_zero_point), _mm512_maskz_loadu_epi32(m[b], r.sums + b * 16));
    for (int p = 0; p < P; ++p) c[p][b] = start;
  }
  for (int64_t t = 0; t < in.segments; ++t) {
    const uint8_t* src[P];
    for (int p = 0; p < P; ++p) src[p] = in.windows[first + p] + in.offsets[t];
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
  if (r.out.f) {
    for (int b = 0; b < NB; ++b) {
      const __m512 mv = _mm512_maskz_loadu_ps(m[b], r.mult + b * 16), bv = _mm512_maskz_loadu_ps(m[b], r.bias + b * 16);
      for (int p = 0; p < P; ++p) {
        __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c[p][b]), mv), bv);
        if (r.relu) y = _mm512_max_ps(y, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(r.out.f + (first + p) * r.out_stride + b * 16, m[b], y);
      }
    }
    return;
  }
  // The ReLU is the floor at the output zero point (quantize_floored_avx512); the packs saturate
  // above 255, and a pixel's channels are one store (pack_levels_avx512).
  const __m512i zp_out = _mm512_set1_epi32(r.out_zero_point);
  const __m512i floor = r.relu ? zp_out : _mm512_setzero_si512();
  const __m512 inv = _mm512_set1_ps(r.inv_out);
  __m512 mv[NB], bv[NB];
  for (int b = 0; b < NB; ++b) {
    mv[b] = _mm512_maskz_loadu_ps(m[b], r.mult + b * 16);
    bv[b] = _mm512_maskz_loadu_ps(m[b], r.bias + b * 16);
  }
  const int64_t count = std::min<int64_t>(r.count, NB * 16);
  const __mmask64 bytes_mask = count >= 64 ? ~__mmask64(0) : (__mmask64(1) << count) - 1;
  for (int p = 0; p < P; ++p) {
    __m512i q[4];
    for (int b = 0; b < NB; ++b) {
      const __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(c[p][b]), mv[b]), bv[b]);
      q[b] = quantize_floored_avx512(y, inv, zp_out, floor);
    }
    for (int b = NB; b < 4; ++b) q[b] = q[0];
    _mm512_mask_storeu_epi8(r.out.q + (first + p) * r.out_stride, bytes_mask,
                            pack_levels_avx512(q[0], q[1], q[2], q[3]));
  }
}

// The tile of `left` pixels (fewer than P) from `first`, if any.
template <int P, typename Tile>
void tail_tile(int64_t first, int64_t left, const Tile& tile) {
  if constexpr (P > 0) {
    if (left == P) return tile(first, std::integral_constant<int, P>{});
    tail_tile<P - 1>(first, left, tile);
  }
}

// Whole tiles of P pixels, then one tile of the pixels left (tile(first, its pixel count as an
// integral_constant)): tiles of one pixel would load every weight for four products.
template <int P, typename Tile>
void over_tiles(int64_t pixels, const Tile& tile) {
  int64_t px = 0;
  for (; px + P <= pixels; px += P) tile(px, std::integral_constant<int, P>{});
  tail_tile<P - 1>(px, pixels - px, tile);
}

template <int NB>
void tiles_avx512_vnni(const Inputs& in, int64_t pixels, const int8_t* quads, int64_t quad_stride,
                       const Requantization& r) {
  over_tiles<pixels_avx512(NB)>(pixels, [&](int64_t first, auto count) {
    tile_avx512_vnni<NB, decltype(count)::value>(in, first, quads, quad_stride, r);
  });
}

// Output channels [og, og + up to `count`) of every pixel, whose outputs lie out_channels apart.
Requantization requantization(const Int8ConvWeights& w, const Int8GemvParams& p, const float* mult, float inv_out,
                              Output out, int64_t og, int64_t count) {
  const int64_t oc_n = w.geometry.out_channels;
  return {w.sums.data() + og,
          mult + og,
          w.bias.data() + og,
          std::min(count, oc_n - og),
          p.in_zero_point,
          p.out_zero_point,
          inv_out,
          p.relu,
          out.at(og),
          oc_n};
}

// `pixels` consecutive output pixels on AVX-512 VNNI, 64 output channels at a time.
void pixels_avx512_vnni(const Int8ConvWeights& w, const Inputs& in, int64_t pixels, const Int8GemvParams& p,
                        const float* mult, float inv_out, Output out) {
  const int64_t oc_n = w.geometry.out_channels, oc16 = round_up(oc_n, 16);
  for (int64_t og = 0; og < oc_n; og += 64) {
    const Requantization r = requantization(w, p, mult, inv_out, out, og, 64);
    const int8_t* quads = w.quads.data() + og * 4;
    switch (std::min<int64_t>(4, (oc16 - og) / 16)) {
      case 4:
        tiles_avx512_vnni<4>(in, pixels, quads, oc16 * 4, r);
        break;
      case 3:
        tiles_avx512_vnni<3>(in, pixels, quads, oc16 * 4, r);
        break;
      case 2:
        tiles_avx512_vnni<2>(in, pixels, quads, oc16 * 4, r);
        break;
      default:
        tiles_avx512_vnni<1>(in, pixels, quads, oc16 * 4, r);
    }
  }
}

constexpr int kPixelsAvxVnni = 6;  // 6 pixels × 2 accumulators + 2 weights + 1 input: 15 of 16 ymm

// P pixels from `first` by NB blocks of 16 output channels on AVX-VNNI: tile_avx512_vnni's sums in
// 8-channel halves, each group of four inputs broadcast against every half, and its
// requantization; a block's two halves of levels are packed to 16 bytes in channel order. One
// pixel takes four blocks (a Linear layer's one row): eight sums in flight instead of two, whose
// vpdpbusd chains would otherwise wait on each other.
template <int NB, int P>
__attribute__((target("avx2,avxvnni"))) void tile_avx_vnni(const Inputs& in, int64_t first, const int8_t* quads,
                                                           int64_t quad_stride, const Requantization& r) {
  constexpr int H = 2 * NB;
  const __m256i count = _mm256_set1_epi32(static_cast<int32_t>(r.count));
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i live[H];
  __m256i c[P][H];
  for (int h = 0; h < H; ++h) {
    live[h] = _mm256_cmpgt_epi32(count, _mm256_add_epi32(lanes, _mm256_set1_epi32(8 * h)));
    const __m256i start =
        _mm256_mullo_epi32(_mm256_set1_epi32(-r.in_zero_point), _mm256_maskload_epi32(r.sums + 8 * h, live[h]));
    for (int p = 0; p < P; ++p) c[p][h] = start;
  }
  for (int64_t t = 0; t < in.segments; ++t) {
    const uint8_t* src[P];
    for (int p = 0; p < P; ++p) src[p] = in.windows[first + p] + in.offsets[t];
    const int8_t* wt = quads + t * in.quads * quad_stride;
    for (int64_t q = 0; q < in.quads; ++q) {
      __m256i wv[H];
      for (int h = 0; h < H; ++h)
        wv[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wt + q * quad_stride + 32 * h));
      for (int p = 0; p < P; ++p) {
        int32_t four;
        std::memcpy(&four, src[p] + q * 4, 4);
        const __m256i av = _mm256_set1_epi32(four);
        for (int h = 0; h < H; ++h) c[p][h] = _mm256_dpbusd_avx_epi32(c[p][h], av, wv[h]);
      }
    }
  }
  if (r.out.f) {
    for (int h = 0; h < H; ++h) {
      const __m256 mv = _mm256_maskload_ps(r.mult + 8 * h, live[h]), bv = _mm256_maskload_ps(r.bias + 8 * h, live[h]);
      for (int p = 0; p < P; ++p) {
        __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(c[p][h]), mv), bv);
        if (r.relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
        _mm256_maskstore_ps(r.out.f + (first + p) * r.out_stride + 8 * h, live[h], y);
      }
    }
    return;
  }
  // tile_avx512_vnni's requantization; the packs saturate above 255.
  const __m256i zp_out = _mm256_set1_epi32(r.out_zero_point);
  const __m256i floor = r.relu ? zp_out : _mm256_setzero_si256();
  const __m256 inv = _mm256_set1_ps(r.inv_out);
  for (int b = 0; b < NB; ++b) {
    const int64_t left = r.count - 16 * b;
    if (left <= 0) break;
    __m256 mv[2], bv[2];
    for (int h = 0; h < 2; ++h) {
      mv[h] = _mm256_maskload_ps(r.mult + 16 * b + 8 * h, live[2 * b + h]);
      bv[h] = _mm256_maskload_ps(r.bias + 16 * b + 8 * h, live[2 * b + h]);
    }
    for (int p = 0; p < P; ++p) {
      __m256i q[2];
      for (int h = 0; h < 2; ++h) {
        const __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(c[p][2 * b + h]), mv[h]), bv[h]);
        q[h] = quantize_floored_avx2(y, inv, zp_out, floor);
      }
      // The block's 16 bytes in order are the first half of the 32 (the pair given twice).
      const __m256i bytes = pack_levels_avx2(q[0], q[1], q[0], q[1]);
      uint8_t* dst = r.out.q + (first + p) * r.out_stride + 16 * b;
      if (left >= 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_castsi256_si128(bytes));
      } else {
        alignas(16) uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), _mm256_castsi256_si128(bytes));
        std::memcpy(dst, tmp, static_cast<size_t>(left));
      }
    }
  }
}

// `pixels` consecutive output pixels on AVX-VNNI, 16 output channels at a time (one pixel: up to
// 64 at a time).
void pixels_avx_vnni(const Int8ConvWeights& w, const Inputs& in, int64_t pixels, const Int8GemvParams& p,
                     const float* mult, float inv_out, Output out) {
  const int64_t oc_n = w.geometry.out_channels, oc16 = round_up(oc_n, 16);
  const int64_t step = pixels == 1 ? 64 : 16;
  for (int64_t og = 0; og < oc_n; og += step) {
    const Requantization r = requantization(w, p, mult, inv_out, out, og, step);
    const int8_t* quads = w.quads.data() + og * 4;
    if (pixels > 1) {
      over_tiles<kPixelsAvxVnni>(pixels, [&](int64_t first, auto count) {
        tile_avx_vnni<1, decltype(count)::value>(in, first, quads, oc16 * 4, r);
      });
      continue;
    }
    switch (std::min<int64_t>(4, (oc16 - og) / 16)) {
      case 4:
        tile_avx_vnni<4, 1>(in, 0, quads, oc16 * 4, r);
        break;
      case 3:
        tile_avx_vnni<3, 1>(in, 0, quads, oc16 * 4, r);
        break;
      case 2:
        tile_avx_vnni<2, 1>(in, 0, quads, oc16 * 4, r);
        break;
      default:
        tile_avx_vnni<1, 1>(in, 0, quads, oc16 * 4, r);
    }
  }
}

// AVX2's view of a band: the same windows and offsets, into the band widened to int16 (element
// i of `wide` is byte i of the band at `base`).
struct Wide {
  const Inputs& inputs;
  const uint8_t* base;
  const int16_t* wide;
};

constexpr int kPixelsAvx2 = 6;  // 6 pixels × 2 accumulators + 2 weights + 1 input: 15 of 16 ymm

// P pixels from `first` by 8 output channels (r.count ≤ 8) on AVX2. A quad's four inputs, widened
// in the band, are broadcast as one 64-bit group; its weights for four channels are widened as they
// load; vpmaddwd then sums x0·w0 + x1·w1 in one lane and x2·w2 + x3·w3 in the next, exactly (no
// pair of u8 × s8 products leaves 32 bits), and a channel's two lanes are added at the end.
template <int P>
__attribute__((target("avx2"))) void tile_avx2(const Wide& in, int64_t first, const int8_t* quads, int64_t quad_stride,
                                               const Requantization& r) {
  // The sums start at the input zero point's correction (−zp · Σw), a channel's in the first of
  // its two lanes.
  const __m256i live =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(r.count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i start = _mm256_mullo_epi32(_mm256_set1_epi32(-r.in_zero_point), _mm256_maskload_epi32(r.sums, live));
  const __m256i start_low = _mm256_cvtepu32_epi64(_mm256_castsi256_si128(start)),
                start_high = _mm256_cvtepu32_epi64(_mm256_extracti128_si256(start, 1));
  __m256i c[P][2];
  for (int p = 0; p < P; ++p) {
    c[p][0] = start_low;
    c[p][1] = start_high;
  }
  const Inputs& t_in = in.inputs;
  for (int64_t t = 0; t < t_in.segments; ++t) {
    const int16_t* src[P];
    for (int p = 0; p < P; ++p) src[p] = in.wide + (t_in.windows[first + p] + t_in.offsets[t] - in.base);
    const int8_t* wt = quads + t * t_in.quads * quad_stride;
    for (int64_t q = 0; q < t_in.quads; ++q) {
      __m256i wv[2];
      for (int g = 0; g < 2; ++g) {
        wv[g] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wt + q * quad_stride + g * 16)));
      }
      for (int p = 0; p < P; ++p) {
        int64_t four;
        std::memcpy(&four, src[p] + q * 4, 8);
        const __m256i av = _mm256_set1_epi64x(four);
        for (int g = 0; g < 2; ++g) c[p][g] = _mm256_add_epi32(c[p][g], _mm256_madd_epi16(av, wv[g]));
      }
    }
  }
  // The sums stay in hadd's order, channels 0 1 4 5 | 2 3 6 7 (no permute per pixel): the
  // per-channel terms are put in that order once a tile, and the bytes back in channel order by
  // the final unpack.
  const __m256 mv =
      _mm256_castsi256_ps(_mm256_permute4x64_epi64(_mm256_castps_si256(_mm256_maskload_ps(r.mult, live)), 0xD8));
  const __m256 bv =
      _mm256_castsi256_ps(_mm256_permute4x64_epi64(_mm256_castps_si256(_mm256_maskload_ps(r.bias, live)), 0xD8));
  // The ReLU of quantized outputs is the floor at the output zero point (quantize_floored_avx2).
  const __m256i zp_out = _mm256_set1_epi32(r.out_zero_point);
  const __m256i floor = r.relu ? zp_out : _mm256_setzero_si256();
  const __m256 inv = _mm256_set1_ps(r.inv_out);
  for (int p = 0; p < P; ++p) {
    const __m256i sums = _mm256_hadd_epi32(c[p][0], c[p][1]);
    const __m256 y = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sums), mv), bv);
    if (r.out.f) {
      // Float outputs in channel order: the same permutation undoes itself.
      const __m256 f = r.relu ? _mm256_max_ps(y, _mm256_setzero_ps()) : y;
      const __m256 ordered = _mm256_castsi256_ps(_mm256_permute4x64_epi64(_mm256_castps_si256(f), 0xD8));
      _mm256_maskstore_ps(r.out.f + (first + p) * r.out_stride, live, ordered);
      continue;
    }
    // The levels (0 to 511) saturate above 255 in the two packs.
    const __m256i levels = quantize_floored_avx2(y, inv, zp_out, floor);
    const __m256i words = _mm256_packus_epi32(levels, levels), bytes = _mm256_packus_epi16(words, words);
    // Lane 0 starts with channels 0 1 4 5, lane 1 with 2 3 6 7: interleaving their byte pairs
    // gives 0–7.
    const __m128i eight = _mm_unpacklo_epi16(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1));
    uint8_t* dst = r.out.q + (first + p) * r.out_stride;
    if (r.count == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), eight);
    } else {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), eight);
      std::memcpy(dst, tmp, static_cast<size_t>(r.count));
    }
  }
}

void tiles_avx2(const Wide& in, int64_t pixels, const int8_t* quads, int64_t quad_stride, const Requantization& r) {
  over_tiles<kPixelsAvx2>(
      pixels, [&](int64_t first, auto count) { tile_avx2<decltype(count)::value>(in, first, quads, quad_stride, r); });
}

// `pixels` consecutive output pixels on AVX2, 8 output channels at a time.
void pixels_avx2(const Int8ConvWeights& w, const Wide& in, int64_t pixels, const Int8GemvParams& p, const float* mult,
                 float inv_out, Output out) {
  const int64_t oc_n = w.geometry.out_channels, oc16 = round_up(oc_n, 16);
  for (int64_t og = 0; og < oc_n; og += 8) {
    const Requantization r = requantization(w, p, mult, inv_out, out, og, 8);
    tiles_avx2(in, pixels, w.quads.data() + og * 4, oc16 * 4, r);
  }
}

// vpmaddubsw sums two u8 × s8 products in 16 bits with saturation: exact while the inputs are
// below 128 (|x0·w0 + x1·w1| ≤ 2 · 127 · 128 = 32512). Activations quantized to 7 bits
// (reduce_range, the default where int8 sums may saturate: no VNNI) are, except where a value
// leaves the range it was calibrated on. So a band's bytes above 127 are clamped to 127 for the
// 7-bit tile and their excess (x − 127) · w added to the sums of the outputs that read them; where
// more than one byte in kDenseExcess has some (8-bit data, a zero point of 128 or more), the band
// takes the widening tile instead. A byte's correction costs about 8 times what the 7-bit tile
// spends on a byte it reads (a 3×3 window: 9 pixels by every channel, 6 instructions per 8
// channels, against 3 per 32 products), and the widening tile about twice the 7-bit one: they
// break even near one byte in 8, and one in 16 stays on the safe side of that.
constexpr int64_t kDenseExcess = 16;

// The band offsets of bytes above 127; false, with `at` cut short, when they are dense.
__attribute__((target("avx2"))) bool sparse_excess(const std::vector<uint8_t>& bytes, std::vector<int64_t>& at) {
  at.clear();
  const auto n = static_cast<int64_t>(bytes.size());
  const auto limit = static_cast<size_t>(n / kDenseExcess);
  const auto note = [&](int64_t i) {
    if (bytes[static_cast<size_t>(i)] < 128) return true;
    if (at.size() == limit) return false;
    at.push_back(i);
    return true;
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    auto high = static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes.data() + i))));
    for (; high != 0; high &= high - 1) {
      if (!note(i + __builtin_ctz(high))) return false;
    }
  }
  for (; i < n; ++i) {
    if (!note(i)) return false;
  }
  return true;
}

// What a band's clamped bytes leave out of its pixels' sums: sums[pixel][o] (rows oc16 apart), set
// for the pixels marked in `touched` only (the others read no clamped byte).
struct ExcessSums {
  std::vector<uint8_t> touched;
  std::vector<int32_t> sums;
};

// For output rows [0, rows) of a band (`ow_n` pixels each): clamps the band's bytes at `at` to 127
// and sums (x − 127) · w over the clamped bytes each pixel's window reads, so that the 7-bit sums
// plus these are the exact ones. A byte's weights for 8 channels are one byte of each of 8 quads:
// shifted to the top of their lanes, then down with their sign. The sums are kept by the tiles'
// slot of each pixel, slots[pixel] (-1: no tile reads it), or by pixel where `slots` is null.
__attribute__((target("avx2"))) void clamp_excess(const Int8ConvWeights& w, PaddedBand& band,
                                                  const std::vector<int64_t>& at, int64_t rows, int64_t ow_n,
                                                  const int64_t* slots, ExcessSums& extra) {
  const auto& g = w.geometry;
  const int64_t c = g.in_channels, oc16 = round_up(g.out_channels, 16), kh = g.kernel[0], kw = g.kernel[1];
  extra.touched.assign(static_cast<size_t>(rows * ow_n), 0);
  extra.sums.resize(static_cast<size_t>(rows * ow_n * oc16));
  const int64_t band_rows = (static_cast<int64_t>(band.bytes.size()) - kBandSlack) / band.row_bytes;
  for (const int64_t pos : at) {
    const __m256i excess = _mm256_set1_epi32(band.bytes[static_cast<size_t>(pos)] - 127);
    band.bytes[static_cast<size_t>(pos)] = 127;
    const int64_t row = pos / band.row_bytes, column = (pos % band.row_bytes) / c, ch = pos % c;
    if (row >= band_rows) continue;  // the slack past the last row, read against zero weights only
    for (int64_t i = 0; i < kh; ++i) {
      const int64_t oh_at = row - i * g.dilation[0];
      if (oh_at < 0 || oh_at % g.stride[0] != 0 || oh_at / g.stride[0] >= rows) continue;
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t ow_at = column - j * g.dilation[1];
        if (ow_at < 0 || ow_at % g.stride[1] != 0 || ow_at / g.stride[1] >= ow_n) continue;
        int64_t pixel = (oh_at / g.stride[0]) * ow_n + ow_at / g.stride[1];
        if (slots && (pixel = slots[pixel]) < 0) continue;
        int32_t* sums = extra.sums.data() + pixel * oc16;
        if (!extra.touched[static_cast<size_t>(pixel)]) {
          std::fill(sums, sums + oc16, 0);
          extra.touched[static_cast<size_t>(pixel)] = 1;
        }
        const int64_t at = quad_offset(w, (i * kw + j) * c + ch), byte = at % 4;
        const int8_t* quads = w.quads.data() + (at - byte);
        const __m128i up = _mm_cvtsi32_si128(static_cast<int>(24 - 8 * byte));
        for (int64_t o = 0; o < oc16; o += 8) {
          const __m256i four = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quads + o * 4));
          const __m256i weights = _mm256_srai_epi32(_mm256_sll_epi32(four, up), 24);
          auto* dst = reinterpret_cast<__m256i*>(sums + o);
          _mm256_storeu_si256(dst, _mm256_add_epi32(_mm256_loadu_si256(dst), _mm256_mullo_epi32(excess, weights)));
        }
      }
    }
  }
}

// 3 pixels × 2 accumulators, ones, two broadcasts and the products (weights read from memory): a
// pair of quads needs more registers than one, and GCC spilled accumulators at 4 and 5 pixels.
// The tile's loop alone (a throwaway copy at g++ -O3, 72 quads by 16 channels, every variant
// interleaved in one run on Zen 3): 3 pixels of paired quads 1.47x as fast as the old 5 pixels of
// single quads, 1.07–1.09x as fast as 4 or 5 pixels of pairs.
constexpr int kPixelsAvx2Narrow = 3;

// Where AVX2's 7-bit tile reads one block of 16 channels (Int8ConvWeights::narrow_order): quad i
// of a pixel at its window + at[i], the channels' weights for it at quads + 64 · i; the first
// 2 · pairs quads are read as pairs.
struct NarrowReads {
  const int64_t* at;
  const int8_t* quads;
  int64_t pairs, singles;
};

// Requantizes sums of NB groups of 8 output channels (r.count ≤ 8 · NB) in the registers and stores
// them as output `at`: the per-channel terms are loaded once. The sums start at `start`, the input
// zero point's correction (−zp · Σw), as the AVX-512 tile's do.
template <int NB>
struct NarrowStore {
  const Requantization& r;
  __m256i live[NB], start[NB];
  __m256 mv[NB], bv[NB];
  int64_t count;

  __attribute__((target("avx2"))) explicit NarrowStore(const Requantization& requantization) : r(requantization) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int b = 0; b < NB; ++b) {
      live[b] = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(r.count - b * 8)), lanes);
      start[b] =
          _mm256_mullo_epi32(_mm256_set1_epi32(-r.in_zero_point), _mm256_maskload_epi32(r.sums + b * 8, live[b]));
      mv[b] = _mm256_maskload_ps(r.mult + b * 8, live[b]);
      bv[b] = _mm256_maskload_ps(r.bias + b * 8, live[b]);
    }
    count = std::min<int64_t>(r.count, NB * 8);
  }

  // The reference's float before its ReLU.
  __attribute__((target("avx2"), always_inline)) inline __m256 value(const __m256i& sums, int b) const {
    return _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sums), mv[b]), bv[b]);
  }

  // Float and quantized outputs take separate paths whole: with the choice made per group of 8
  // channels, GCC kept the first group's levels on the stack and reloaded them for packing (seen in
  // perf annotate of the 1 -> 32 pooled layer, whose time is mostly this store).
  __attribute__((target("avx2"))) void store(const __m256i (&sums)[NB], int64_t at) const {
    if (r.out.f) {
      for (int b = 0; b < NB; ++b) {
        const __m256 y = value(sums[b], b);
        _mm256_maskstore_ps(r.out.f + at * r.out_stride + b * 8, live[b],
                            r.relu ? _mm256_max_ps(y, _mm256_setzero_ps()) : y);
      }
      return;
    }
    // The ReLU is the floor at the output zero point (quantize_floored_avx2); the packs saturate
    // above 255.
    const __m256i zp_out = _mm256_set1_epi32(r.out_zero_point);
    const __m256i floor = r.relu ? zp_out : _mm256_setzero_si256();
    const __m256 inv = _mm256_set1_ps(r.inv_out);
    const __m256i first = quantize_floored_avx2(value(sums[0], 0), inv, zp_out, floor);
    const __m256i last = NB == 1 ? first : quantize_floored_avx2(value(sums[NB - 1], NB - 1), inv, zp_out, floor);
    // Channels 0–7 then 8–15 in the low 16 bytes, saturated to [0, 255] (with one group, 0–7 twice).
    const __m128i bytes = _mm256_castsi256_si128(pack_levels_avx2(first, last, first, last));
    uint8_t* dst = r.out.q + at * r.out_stride;
    if (count == 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), bytes);
    } else if (count == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), bytes);
    } else {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
      std::memcpy(dst, tmp, static_cast<size_t>(count));
    }
  }
};

// The sums of P pixels (windows src[0..P)) by NB groups of 8 output channels on AVX2, from the
// store's start, over a band of 7-bit bytes (sparse_excess), plus the clamped bytes' sums where r.extra has them for
// the pixels from `first`: a quad's four inputs broadcast as they are, 8 channels' weights one load; vpmaddubsw sums
// x0·w0 + x1·w1 and x2·w2 + x3·w3 in 16 bits, vpmaddwd by ones adds the two into the channel's 32-bit lane. Twice the
// products an instruction of the widening tile's, and the sums come out in channel order. A pair of quads adds its two
// vpmaddubsw sums in 16 bits first (exact: kNarrowPairLimit), one vpmaddwd for both.
template <int NB, int P>
__attribute__((target("avx2"), always_inline)) inline void sums_avx2_narrow(const uint8_t* const* src,
                                                                            const NarrowReads& rd, int64_t first,
                                                                            const NarrowStore<NB>& store,
                                                                            __m256i (&c)[P][NB]) {
  const Requantization& r = store.r;
  for (int p = 0; p < P; ++p)
    for (int b = 0; b < NB; ++b) c[p][b] = store.start[b];
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t i = 0; i < rd.pairs; ++i) {
    const int8_t* wt = rd.quads + i * 128;
    const int64_t at0 = rd.at[2 * i], at1 = rd.at[2 * i + 1];
    __m256i w0[NB], w1[NB];
    for (int b = 0; b < NB; ++b) {
      w0[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wt + b * 32));
      w1[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wt + 64 + b * 32));
    }
    for (int p = 0; p < P; ++p) {
      int32_t four0, four1;
      std::memcpy(&four0, src[p] + at0, 4);
      std::memcpy(&four1, src[p] + at1, 4);
      const __m256i a0 = _mm256_set1_epi32(four0), a1 = _mm256_set1_epi32(four1);
      for (int b = 0; b < NB; ++b) {
        const __m256i both = _mm256_add_epi16(_mm256_maddubs_epi16(a0, w0[b]), _mm256_maddubs_epi16(a1, w1[b]));
        c[p][b] = _mm256_add_epi32(c[p][b], _mm256_madd_epi16(both, ones));
      }
    }
  }
  const int8_t* singles = rd.quads + rd.pairs * 128;
  const int64_t* single_at = rd.at + 2 * rd.pairs;
  for (int64_t i = 0; i < rd.singles; ++i) {
    __m256i wv[NB];
    for (int b = 0; b < NB; ++b) {
      wv[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(singles + i * 64 + b * 32));
    }
    for (int p = 0; p < P; ++p) {
      int32_t four;
      std::memcpy(&four, src[p] + single_at[i], 4);
      const __m256i av = _mm256_set1_epi32(four);
      for (int b = 0; b < NB; ++b) {
        c[p][b] = _mm256_add_epi32(c[p][b], _mm256_madd_epi16(_mm256_maddubs_epi16(av, wv[b]), ones));
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    if (!r.extra || !r.touched[first + p]) continue;
    for (int b = 0; b < NB; ++b) {
      c[p][b] = _mm256_add_epi32(
          c[p][b],
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.extra + (first + p) * r.extra_stride + b * 8)));
    }
  }
}

// P pixels from `first` by NB groups of 8 output channels on AVX2, from a 7-bit band
// (sums_avx2_narrow), requantized in the registers (`store`); or, where `maxima` is set, the
// pixels are the 2x2 pooling windows' pixels, four a window in order, and each sum goes into its
// window's running maximum there (maxima[window][16]), requantized once every window is whole.
template <int NB, int P>
__attribute__((target("avx2"))) void tile_avx2_narrow(const uint8_t* const* windows, int64_t first,
                                                      const NarrowReads& rd, const NarrowStore<NB>& store,
                                                      int32_t* maxima) {
  __m256i c[P][NB];
  sums_avx2_narrow<NB, P>(windows + first, rd, first, store, c);
  for (int p = 0; p < P; ++p) {
    if (!maxima) {
      store.store(c[p], first + p);
      continue;
    }
    auto* slot = reinterpret_cast<__m256i*>(maxima + (first + p) / 4 * 16);
    for (int b = 0; b < NB; ++b) {
      _mm256_storeu_si256(slot + b,
                          (first + p) % 4 == 0 ? c[p][b] : _mm256_max_epi32(_mm256_loadu_si256(slot + b), c[p][b]));
    }
  }
}

// One 2x2 pooling window's four pixels from `first` (window first / 4), their largest sum
// requantized: for layers of few quads (kFewQuads), whose work is mostly requantization, where the
// maxima's round trip through memory would cost more than the registers the four sums take.
template <int NB>
__attribute__((target("avx2"))) void window_avx2_narrow(const uint8_t* const* windows, int64_t first,
                                                        const NarrowReads& rd, const NarrowStore<NB>& store) {
  __m256i c[4][NB], largest[NB];
  sums_avx2_narrow<NB, 4>(windows + first, rd, first, store, c);
  for (int b = 0; b < NB; ++b) {
    largest[b] = _mm256_max_epi32(_mm256_max_epi32(c[0][b], c[1][b]), _mm256_max_epi32(c[2][b], c[3][b]));
  }
  store.store(largest, first / 4);
}

// Up to this many quads a block (the first convolution of an image of one channel reads 3), a
// pooled run keeps each window's sums in the registers: measured on the convnet's 1 → 32 layer,
// the maxima's round trip made it 8 % slower.
constexpr int64_t kFewQuads = 8;

template <int NB>
__attribute__((target("avx2"))) void tiles_avx2_narrow(const uint8_t* const* windows, int64_t pixels,
                                                       const NarrowReads& rd, const Requantization& r,
                                                       std::vector<int32_t>* maxima) {
  const NarrowStore<NB> store(r);
  if (maxima && 2 * rd.pairs + rd.singles <= kFewQuads) {
    for (int64_t first = 0; first < pixels; first += 4) window_avx2_narrow<NB>(windows, first, rd, store);
    return;
  }
  int32_t* max = nullptr;
  if (maxima) {
    maxima->resize(static_cast<size_t>(pixels / 4 * 16));
    max = maxima->data();
  }
  over_tiles<kPixelsAvx2Narrow>(pixels, [&](int64_t first, auto count) {
    tile_avx2_narrow<NB, decltype(count)::value>(windows, first, rd, store, max);
  });
  if (!maxima) return;
  for (int64_t window = 0; window < pixels / 4; ++window) {
    __m256i sums[NB];
    for (int b = 0; b < NB; ++b) sums[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(max + window * 16) + b);
    store.store(sums, window);
  }
}

// `pixels` consecutive output pixels on AVX2 from a 7-bit band, 16 output channels at a time, each
// block's quads read at `at` (narrow_order's, offsets from a window), the clamped bytes' sums added
// where `extra` has them (none when `extra` is null); where `maxima` is set, the pixels are 2x2
// windows, four by four, and each window's largest sum is requantized (maxima: a scratch buffer).
void pixels_avx2_narrow(const Int8ConvWeights& w, const uint8_t* const* windows, const int64_t* at, int64_t pixels,
                        const Int8GemvParams& p, const float* mult, float inv_out, Output out, const ExcessSums* extra,
                        std::vector<int32_t>* maxima) {
  const int64_t oc_n = w.geometry.out_channels, oc16 = round_up(oc_n, 16), total = w.segments * w.segment_quads;
  for (int64_t og = 0; og < oc_n; og += 16) {
    Requantization r = requantization(w, p, mult, inv_out, out, og, 16);
    if (extra) {
      r.extra = extra->sums.data() + og;
      r.touched = extra->touched.data();
      r.extra_stride = oc16;
    }
    const auto block = static_cast<size_t>(og / 16);
    const NarrowReads rd{at + og / 16 * total, w.narrow_quads.data() + og / 16 * total * 64, w.narrow_pairs[block],
                         w.narrow_singles[block]};
    if (r.count > 8) {
      tiles_avx2_narrow<2>(windows, pixels, rd, r, maxima);
    } else {
      tiles_avx2_narrow<1>(windows, pixels, rd, r, maxima);
    }
  }
}

// Output rows [begin, end) of the batch on `path` (AVX-512 VNNI or AVX2): rows of the convolution
// (row r: image r / oh_n, row r % oh_n) or, where `pooled`, of its 2x2 max pooling (each from two
// convolution rows). An image's rows are consecutive in the output, so a few go through the tiles
// as one run of pixels: only the run's last tile is a partial one. A pooled run on the 7-bit tile
// orders its pixels window by window and requantizes each window's largest sum, where
// requantization never decreases (`monotonic`); other pooled runs go through a scratch run and the
// pooling kernel.
void rows_vector(const Int8ConvWeights& w, const uint8_t* x, int64_t height, int64_t width, const Int8GemvParams& p,
                 const float* mult, const int64_t* narrow_at, Output out, int64_t begin, int64_t end, Int8Path path,
                 bool pooled, bool monotonic) {
  const auto& g = w.geometry;
  const auto [oh_n, ow_n] = int8_conv2d_output_size(g, height, width);
  const int64_t c = g.in_channels, oc_n = g.out_channels;
  const int64_t rows_n = pooled ? oh_n / 2 : oh_n, cols_n = pooled ? ow_n / 2 : ow_n, span = pooled ? 2 : 1;
  const float inv_out = 1.0f / p.out_scale;
  constexpr int64_t kRunPixels = 96;
  const int64_t run_rows = std::max<int64_t>(1, kRunPixels / (span * ow_n));
  std::vector<const uint8_t*> windows(static_cast<size_t>(span * run_rows * ow_n));
  const int64_t row_bytes = band_row_bytes(g, width);
  std::vector<int64_t> offsets(static_cast<size_t>(w.segments));
  for (int64_t t = 0; t < w.segments; ++t) {
    const auto [down, on] = segment_start(w, t);
    offsets[static_cast<size_t>(t)] = down * row_bytes + on;
  }
  const Inputs in{windows.data(), offsets.data(), w.segments, w.segment_quads};
  PaddedBand band;
  std::vector<int16_t> wide;     // AVX2: the band widened to int16
  std::vector<int64_t> excess;   // AVX2: where the band's bytes above 127 are
  ExcessSums extra;              // AVX2: what clamping them leaves out
  std::vector<int64_t> slots;    // a pooled run's tile slot of each convolution pixel
  std::vector<uint8_t> scratch;  // a pooled run's convolution rows, where it pools them afterwards
  std::vector<int32_t> maxima;   // a pooled run's window maxima, on the 7-bit tile
  for (int64_t r0 = begin; r0 < end;) {
    // A run is rows of one image, padded into a band of its own: the band stays a few rows,
    // whatever the image's size.
    const int64_t n = r0 / rows_n, row0 = r0 % rows_n;
    const int64_t rows = std::min({run_rows, end - r0, rows_n - row0});
    const int64_t oh0 = span * row0, conv_rows = span * rows;
    pad_band(g, x + n * height * width * c, height, width, oh0, oh0 + conv_rows - 1,
             static_cast<uint8_t>(p.in_zero_point), band);
    const auto window = [&](int64_t i, int64_t ow) { return band.row((oh0 + i) * g.stride[0]) + ow * g.stride[1] * c; };
    const Output dst = out.at(r0 * cols_n * oc_n);
    const bool narrow = path == Int8Path::kAvx2 && sparse_excess(band.bytes, excess);
    if (pooled && narrow && monotonic) {
      slots.assign(static_cast<size_t>(conv_rows * ow_n), -1);
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols_n; ++j) {
          for (int64_t s = 0; s < 4; ++s) {
            const int64_t ci = 2 * i + s / 2, cj = 2 * j + s % 2, slot = (i * cols_n + j) * 4 + s;
            windows[static_cast<size_t>(slot)] = window(ci, cj);
            slots[static_cast<size_t>(ci * ow_n + cj)] = slot;
          }
        }
      }
      if (!excess.empty()) clamp_excess(w, band, excess, conv_rows, ow_n, slots.data(), extra);
      pixels_avx2_narrow(w, windows.data(), narrow_at, rows * cols_n * 4, p, mult, inv_out, dst,
                         excess.empty() ? nullptr : &extra, &maxima);
    } else {
      for (int64_t i = 0; i < conv_rows; ++i) {
        for (int64_t ow = 0; ow < ow_n; ++ow) windows[static_cast<size_t>(i * ow_n + ow)] = window(i, ow);
      }
      if (pooled) scratch.resize(static_cast<size_t>(conv_rows * ow_n * oc_n));
      const Output conv_out = pooled ? Output{scratch.data(), nullptr} : dst;
      if (path == Int8Path::kAvx512Vnni) {
        pixels_avx512_vnni(w, in, conv_rows * ow_n, p, mult, inv_out, conv_out);
      } else if (path == Int8Path::kAvxVnni) {
        pixels_avx_vnni(w, in, conv_rows * ow_n, p, mult, inv_out, conv_out);
      } else if (narrow) {
        if (!excess.empty()) clamp_excess(w, band, excess, conv_rows, ow_n, nullptr, extra);
        pixels_avx2_narrow(w, windows.data(), narrow_at, conv_rows * ow_n, p, mult, inv_out, conv_out,
                           excess.empty() ? nullptr : &extra, nullptr);
      } else {
        wide.assign(band.bytes.begin(), band.bytes.end());
        const Wide in16{in, band.bytes.data(), wide.data()};
        pixels_avx2(w, in16, conv_rows * ow_n, p, mult, inv_out, conv_out);
      }
      if (pooled) int8_max_pool2x2(scratch.data(), 1, conv_rows, ow_n, oc_n, dst.q, int8_max_pool_best_kernel());
    }
    r0 += rows;
  }
}

}  // namespace
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

Int8Path int8_conv2d_best_path() { return best_int8_path(); }

namespace {

// The convolution, or its 2x2 max pooling where `pooled`.
void run(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
         const Int8GemvParams& p, Output out, Int8Path path, bool pooled = false) {
  SHRINK_CHECK(int8_path_available(path), "int8 Conv2d: this CPU lacks the ", int8_path_name(path), " path");
  const auto [oh_n, ow_n] = int8_conv2d_output_size(w.geometry, height, width);
  SHRINK_CHECK(!pooled || (oh_n >= 2 && ow_n >= 2), "int8 Conv2d + 2x2 max pooling: the convolution's output of ", oh_n,
               "x", ow_n, " is smaller than the pooling window");
  if (path == Int8Path::kReference) {
    if (!pooled) return reference(w, x, batch, height, width, p, out);
    std::vector<uint8_t> conv(static_cast<size_t>(batch * oh_n * ow_n * w.geometry.out_channels));
    reference(w, x, batch, height, width, p, Output{conv.data(), nullptr});
    return int8_max_pool2x2(conv.data(), batch, oh_n, ow_n, w.geometry.out_channels, out.q, VectorPath::kReference);
  }
#ifdef SHRINK_X86
  const auto mult = multipliers(w, p);
  // A window's largest sum gives its largest output where requantization never decreases.
  const float inv_out = 1.0f / p.out_scale;
  const bool monotonic = inv_out > 0 && std::isfinite(inv_out) &&
                         std::all_of(mult.begin(), mult.end(), [](float m) { return m > 0 && std::isfinite(m); });
  // Enough rows a task to be worth a thread: ~256k multiply-adds.
  const int64_t row_macs = std::max<int64_t>(1, (pooled ? 2 : 1) * ow_n * w.geometry.out_channels * w.k);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / row_macs);
  // AVX2's 7-bit tile: each quad's offset from a window, as the weights give them where no quad lies
  // rows down (Linear layers, kernels one row high).
  std::vector<int64_t> narrow_at;
  const int64_t* at = w.narrow_bytes.data();
  if (path == Int8Path::kAvx2 && w.geometry.kernel[0] > 1) {
    const int64_t row_bytes = band_row_bytes(w.geometry, width);
    narrow_at.resize(w.narrow_bytes.size());
    for (size_t i = 0; i < narrow_at.size(); ++i) narrow_at[i] = w.narrow_rows[i] * row_bytes + w.narrow_bytes[i];
    at = narrow_at.data();
  }
  at::parallel_for(0, batch * (pooled ? oh_n / 2 : oh_n), grain, [&](int64_t begin, int64_t end) {
    rows_vector(w, x, height, width, p, mult.data(), at, out, begin, end, path, pooled, monotonic);
  });
#endif
}

}  // namespace

void int8_conv2d(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                 const Int8GemvParams& p, uint8_t* out, Int8Path path) {
  run(w, x, batch, height, width, p, Output{out, nullptr}, path);
}

void int8_conv2d_float(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                       const Int8GemvParams& p, float* out, Int8Path path) {
  run(w, x, batch, height, width, p, Output{nullptr, out}, path);
}

void int8_conv2d_max_pool2x2(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                             const Int8GemvParams& p, uint8_t* out, Int8Path path) {
  run(w, x, batch, height, width, p, Output{out, nullptr}, path, true);
}

void int8_conv2d_max_pool2x2(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                             const Int8GemvParams& p, uint8_t* out) {
  int8_conv2d_max_pool2x2(w, x, batch, height, width, p, out, int8_conv2d_best_path());
}

void int8_conv2d(const Int8ConvWeights& w, const uint8_t* x, int64_t batch, int64_t height, int64_t width,
                 const Int8GemvParams& p, uint8_t* out) {
  int8_conv2d(w, x, batch, height, width, p, out, int8_conv2d_best_path());
}

}  // namespace shrink::runtime
