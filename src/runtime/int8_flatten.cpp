// Channels-last quint8 images to NCHW order: 16 × 16 byte blocks transposed in SSE2 registers,
// the edges byte by byte.
#include "runtime/int8_flatten.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "core/cpu_features.h"

#ifdef SHRINK_X86
#include <immintrin.h>
#endif

namespace shrink::runtime {

namespace {

// Pixels [p0, p1) by channels [c0, c1) of one image, byte by byte.
void transpose_span(const uint8_t* x, int64_t pixels, int64_t channels, int64_t p0, int64_t p1, int64_t c0, int64_t c1,
                    uint8_t* out) {
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t p = p0; p < p1; ++p) out[c * pixels + p] = x[p * channels + c];
  }
}

#ifdef SHRINK_X86
// Pixels [p, p + 16) by channels [c, c + 16): unpacking pairs of rows at 1, 2, 4 then 8 bytes
// leaves channel j's 16 pixels in register j.
void transpose_block(const uint8_t* x, int64_t pixels, int64_t channels, int64_t p, int64_t c, uint8_t* out) {
  __m128i a[16], b[16];
  for (int i = 0; i < 16; ++i) a[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + (p + i) * channels + c));
  for (int i = 0; i < 8; ++i) {
    b[2 * i] = _mm_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
    b[2 * i + 1] = _mm_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
  }
  for (int k = 0; k < 4; ++k) {
    a[4 * k] = _mm_unpacklo_epi16(b[4 * k], b[4 * k + 2]);
    a[4 * k + 1] = _mm_unpackhi_epi16(b[4 * k], b[4 * k + 2]);
    a[4 * k + 2] = _mm_unpacklo_epi16(b[4 * k + 1], b[4 * k + 3]);
    a[4 * k + 3] = _mm_unpackhi_epi16(b[4 * k + 1], b[4 * k + 3]);
  }
  for (int m = 0; m < 2; ++m) {
    for (int g = 0; g < 4; ++g) {
      b[8 * m + 2 * g] = _mm_unpacklo_epi32(a[8 * m + g], a[8 * m + 4 + g]);
      b[8 * m + 2 * g + 1] = _mm_unpackhi_epi32(a[8 * m + g], a[8 * m + 4 + g]);
    }
  }
  for (int j = 0; j < 8; ++j) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (c + 2 * j) * pixels + p), _mm_unpacklo_epi64(b[j], b[8 + j]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (c + 2 * j + 1) * pixels + p),
                     _mm_unpackhi_epi64(b[j], b[8 + j]));
  }
}
#endif

void transpose_image(const uint8_t* x, int64_t pixels, int64_t channels, uint8_t* out) {
  int64_t p_blocks = 0, c_blocks = 0;
#ifdef SHRINK_X86
  p_blocks = pixels / 16 * 16;
  c_blocks = channels / 16 * 16;
  for (int64_t p = 0; p < p_blocks; p += 16) {
    for (int64_t c = 0; c < c_blocks; c += 16) transpose_block(x, pixels, channels, p, c, out);
  }
#endif
  transpose_span(x, pixels, channels, 0, p_blocks, c_blocks, channels, out);
  transpose_span(x, pixels, channels, p_blocks, pixels, 0, channels, out);
}

}  // namespace

void transpose_images(const uint8_t* x, int64_t batch, int64_t pixels, int64_t channels, uint8_t* out) {
  const int64_t image = pixels * channels;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, image));  // ~64 KiB a task
  at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) transpose_image(x + n * image, pixels, channels, out + n * image);
  });
}

at::Tensor int8_flatten(const at::Tensor& x) {
  const bool transposes = x.device().is_cpu() && x.layout() == at::kStrided && x.scalar_type() == at::kQUInt8 &&
                          x.qscheme() == at::kPerTensorAffine && x.dim() == 4 &&
                          x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous();
  if (!transposes) return x.flatten(1);
  const int64_t batch = x.size(0), channels = x.size(1), pixels = x.size(2) * x.size(3);
  auto out = at::_empty_affine_quantized({batch, channels * pixels}, x.options(), x.q_scale(), x.q_zero_point());
  transpose_images(reinterpret_cast<const uint8_t*>(x.data_ptr()), batch, pixels, channels,
                   reinterpret_cast<uint8_t*>(out.data_ptr()));
  return out;
}

}  // namespace shrink::runtime
