// quint8 2x2 max pooling in channels-last order: reference and AVX2 kernels, and the tensor entry.
#include "runtime/int8_max_pool.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "core/cpu_features.h"
#include "core/error.h"

#ifdef SHRINK_X86
#include <immintrin.h>
#endif

namespace shrink::runtime {

namespace {

// One output row: pixel j's channels are the maxima of input pixels 2j and 2j + 1 of rows `top`
// and `bottom`.
void row_reference(const uint8_t* top, const uint8_t* bottom, int64_t ow_n, int64_t c, uint8_t* out) {
  for (int64_t j = 0; j < ow_n; ++j) {
    const uint8_t* a = top + 2 * j * c;
    const uint8_t* b = bottom + 2 * j * c;
    for (int64_t ch = 0; ch < c; ++ch) {
      out[j * c + ch] = std::max(std::max(a[ch], a[c + ch]), std::max(b[ch], b[c + ch]));
    }
  }
}

#ifdef SHRINK_X86
__attribute__((target("avx2"))) void row_avx2(const uint8_t* top, const uint8_t* bottom, int64_t ow_n, int64_t c,
                                              uint8_t* out) {
  for (int64_t j = 0; j < ow_n; ++j) {
    const uint8_t* a = top + 2 * j * c;
    const uint8_t* b = bottom + 2 * j * c;
    uint8_t* o = out + j * c;
    int64_t ch = 0;
    for (; ch + 32 <= c; ch += 32) {
      const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + ch));
      const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + c + ch));
      const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + ch));
      const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + c + ch));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + ch),
                          _mm256_max_epu8(_mm256_max_epu8(a0, a1), _mm256_max_epu8(b0, b1)));
    }
    for (; ch + 16 <= c; ch += 16) {
      const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + ch));
      const __m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + c + ch));
      const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + ch));
      const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + c + ch));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + ch), _mm_max_epu8(_mm_max_epu8(a0, a1), _mm_max_epu8(b0, b1)));
    }
    for (; ch < c; ++ch) o[ch] = std::max(std::max(a[ch], a[c + ch]), std::max(b[ch], b[c + ch]));
  }
}
#endif

}  // namespace

bool int8_max_pool2x2_applies(const at::Tensor& x) {
  return x.device().is_cpu() && x.layout() == at::kStrided && x.scalar_type() == at::kQUInt8 &&
         x.qscheme() == at::kPerTensorAffine && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
         x.size(2) >= 2 && x.size(3) >= 2 && x.numel() > 0;
}

void int8_max_pool2x2(const uint8_t* x, int64_t batch, int64_t height, int64_t width, int64_t channels, uint8_t* out,
                      VectorPath kernel) {
  SHRINK_CHECK(kernel != VectorPath::kAvx512, "int8_max_pool2x2 has no avx512 path (reference and avx2)");
  check_vector_path(kernel, "int8_max_pool2x2");
  SHRINK_CHECK(batch >= 0 && channels > 0 && height >= 2 && width >= 2, "int8_max_pool2x2 takes H, W >= 2, got ",
               height, "x", width, " with ", channels, " channels");
  const int64_t oh_n = height / 2, ow_n = width / 2, row = width * channels;
  void (*run_row)(const uint8_t*, const uint8_t*, int64_t, int64_t, uint8_t*) = row_reference;
#ifdef SHRINK_X86
  if (kernel == VectorPath::kAvx2) run_row = row_avx2;
#endif
  // ~64 KiB of input a task.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / (2 * row));
  at::parallel_for(0, batch * oh_n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / oh_n, i = r % oh_n;
      const uint8_t* top = x + (n * height + 2 * i) * row;
      run_row(top, top + row, ow_n, channels, out + r * ow_n * channels);
    }
  });
}

VectorPath int8_max_pool_best_kernel() {
  static const VectorPath best = vector_path_available(VectorPath::kAvx2) ? VectorPath::kAvx2 : VectorPath::kReference;
  return best;
}

at::Tensor int8_max_pool2x2(const at::Tensor& x) { return int8_max_pool2x2(x, int8_max_pool_best_kernel()); }

at::Tensor int8_max_pool2x2(const at::Tensor& x, VectorPath kernel) {
  // Every argument spelled out: quantized max pooling refuses defaulted ones.
  if (!int8_max_pool2x2_applies(x)) return at::max_pool2d(x, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false);
  const int64_t batch = x.size(0), channels = x.size(1), height = x.size(2), width = x.size(3);
  auto out = at::_empty_affine_quantized({batch, channels, height / 2, width / 2}, x.options(), x.q_scale(),
                                         x.q_zero_point(), at::MemoryFormat::ChannelsLast);
  int8_max_pool2x2(reinterpret_cast<const uint8_t*>(x.data_ptr()), batch, height, width, channels,
                   reinterpret_cast<uint8_t*>(out.data_ptr()), kernel);
  return out;
}

}  // namespace shrink::runtime
