// Packed fp32 Linear: scalar reference; AVX2 and AVX-512 tiles. A tile multiplies a few rows of x
// by one to four panels, its sums in registers, broadcasting one input value at a time against the
// panel's 32 weights of that input feature; threads split the panels.
#include "runtime/packed_linear.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu_features.h"  // SHRINK_X86
#include "core/error.h"

#ifdef SHRINK_X86
#include <immintrin.h>
#endif

namespace shrink::runtime {

namespace {

// Below this many multiply-adds a thread's share is not worth waking it for.
constexpr int64_t kMinMacsPerThread = 1 << 16;
// Input rows a chunk holds, in bytes: half the L2 of the Xeon measured (2 MiB a core; Zen 4 has
// 1 MiB). At 256 KiB the convnet's 3136 → 256 at batch 64 went from one chunk to six, each reading
// all 3.2 MB of W from L3 (calls alternated: 728–1103 µs at 1 MiB, 978–1322 at 256 KiB).
constexpr int64_t kRowChunkBytes = 1 << 20;

void check_args(const PackedLinearWeights& w, const float* x, int64_t batch, const float* y) {
  SHRINK_CHECK(batch >= 0, "packed Linear: batch must be >= 0, got ", batch);
  SHRINK_CHECK(w.rows > 0 && w.cols > 0 &&
                   w.panels.size() == static_cast<size_t>(w.panel_count() * w.cols * kPackedPanel) &&
                   w.bias.size() == static_cast<size_t>(w.panel_count() * kPackedPanel),
               "packed Linear: inconsistent weights (", w.rows, " rows, ", w.cols, " columns, ", w.panels.size(),
               " packed values, ", w.bias.size(), " biases)");
  SHRINK_CHECK(batch == 0 || (x != nullptr && y != nullptr), "packed Linear: null input or output");
}

inline float finish(float acc, float bias, bool relu) {
  const float v = acc + bias;
  return relu && v < 0.0f ? 0.0f : v;
}

#ifdef SHRINK_X86
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns about its own AVX-512 headers (their _mm512_undefined_* values initialise
// themselves, GCC bug 105593) wherever those intrinsics inline into these kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// One tile: MR rows of x (`k` values each, contiguous) against NP panels starting at `w`; writes
// the first `valid` of the panels' columns of each row.
struct TileArgs {
  const float* x;
  int64_t k;
  const float* w;
  const float* bias;
  float* y;
  int64_t y_stride;
  int64_t valid;
  bool relu;
  // Cache lines of the next panel to fetch into L2 while this tile runs (AVX-512), two an input
  // feature: at most the panel's own number of lines.
  const char* prefetch = nullptr;
  int64_t prefetch_lines = 0;
};

using TileFn = void (*)(const TileArgs&);

// The tile's sums fill at most 30 of the 32 AVX-512 registers with the panels' weights of one input
// feature: two vectors a panel and a row.
constexpr int kMaxRows512 = 12;
constexpr int panels512(int rows) { return rows <= 2 ? 4 : rows <= 4 ? 3 : rows <= 6 ? 2 : 1; }

template <int MR, int NP>
__attribute__((target("avx512f"))) void tile_avx512(const TileArgs& a) {
  __m512 acc[MR][NP][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) acc[r][p][0] = acc[r][p][1] = _mm512_setzero_ps();
  }
  const int64_t stride = a.k * kPackedPanel;
  for (int64_t k = 0; k < a.k; ++k) {
    if (2 * k < a.prefetch_lines) {
      _mm_prefetch(a.prefetch + 128 * k, _MM_HINT_T1);
      _mm_prefetch(a.prefetch + 128 * k + 64, _MM_HINT_T1);
    }
    __m512 w[NP][2];
#pragma GCC unroll 4
    for (int p = 0; p < NP; ++p) {
      w[p][0] = _mm512_loadu_ps(a.w + p * stride + k * kPackedPanel);
      w[p][1] = _mm512_loadu_ps(a.w + p * stride + k * kPackedPanel + 16);
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 xb = _mm512_set1_ps(a.x[r * a.k + k]);
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) {
        acc[r][p][0] = _mm512_fmadd_ps(w[p][0], xb, acc[r][p][0]);
        acc[r][p][1] = _mm512_fmadd_ps(w[p][1], xb, acc[r][p][1]);
      }
    }
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int p = 0; p < NP; ++p) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const int64_t col = p * kPackedPanel + h * 16;
      if (col >= a.valid) continue;
      const int64_t n = std::min<int64_t>(16, a.valid - col);
      const __mmask16 mask = n == 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
      const __m512 b = _mm512_loadu_ps(a.bias + col);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        __m512 v = _mm512_add_ps(acc[r][p][h], b);
        // max(0, v) returns v where v is NaN, as the reference's `v < 0 ? 0 : v` does.
        if (a.relu) v = _mm512_max_ps(zero, v);
        _mm512_mask_storeu_ps(a.y + r * a.y_stride + col, mask, v);
      }
    }
  }
}

// Adds the bias to MR rows of V vectors of sums (row-major in `acc`), clamps them for a ReLU and
// stores the first `valid` columns.
template <int MR, int V>
__attribute__((target("avx2,fma"))) inline void store_avx2(const TileArgs& a, const __m256* acc) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 8
  for (int q = 0; q < V; ++q) {
    const int64_t col = q * 8;
    if (col >= a.valid) continue;
    const int n = static_cast<int>(std::min<int64_t>(8, a.valid - col));
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes);
    const __m256 b = _mm256_loadu_ps(a.bias + col);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      __m256 v = _mm256_add_ps(acc[r * V + q], b);
      if (a.relu) v = _mm256_max_ps(zero, v);
      _mm256_maskstore_ps(a.y + r * a.y_stride + col, mask, v);
    }
  }
}

// AVX2's sixteen registers: up to six rows against half a panel (two vectors a row, the half
// panel's weights in two more), or one row against two whole panels (a single sample, where more
// independent sums hide the multiply-adds' latency).
constexpr int kMaxRows256 = 6;

template <int MR>
__attribute__((target("avx2,fma"))) void half_tile_avx2(const TileArgs& a) {
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < a.k; ++k) {
    const __m256 w0 = _mm256_loadu_ps(a.w + k * kPackedPanel), w1 = _mm256_loadu_ps(a.w + k * kPackedPanel + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 xb = _mm256_broadcast_ss(a.x + r * a.k + k);
      acc[r][0] = _mm256_fmadd_ps(w0, xb, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(w1, xb, acc[r][1]);
    }
  }
  store_avx2<MR, 2>(a, &acc[0][0]);
}

template <int NP>
__attribute__((target("avx2,fma"))) void row_tile_avx2(const TileArgs& a) {
  __m256 acc[NP * 4];
#pragma GCC unroll 8
  for (int q = 0; q < NP * 4; ++q) acc[q] = _mm256_setzero_ps();
  const int64_t stride = a.k * kPackedPanel;
  for (int64_t k = 0; k < a.k; ++k) {
    const __m256 xb = _mm256_broadcast_ss(a.x + k);
#pragma GCC unroll 8
    for (int q = 0; q < NP * 4; ++q) {
      acc[q] = _mm256_fmadd_ps(_mm256_loadu_ps(a.w + (q / 4) * stride + k * kPackedPanel + 8 * (q % 4)), xb, acc[q]);
    }
  }
  store_avx2<1, NP * 4>(a, acc);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// tile_avx512<MR, np> for np in 1..NP.
template <int MR, int NP>
TileFn tile512_for_panels(int np) {
  if constexpr (NP == 0) {
    return nullptr;
  } else {
    if (np == NP) return &tile_avx512<MR, NP>;
    return tile512_for_panels<MR, NP - 1>(np);
  }
}

// tile_avx512<mr, np> for mr in 1..MR.
template <int MR>
TileFn tile512_for(int mr, int np) {
  if constexpr (MR == 0) {
    return nullptr;
  } else {
    if (mr == MR) return tile512_for_panels<MR, panels512(MR)>(np);
    return tile512_for<MR - 1>(mr, np);
  }
}

// half_tile_avx2<mr> for mr in 1..MR.
template <int MR>
TileFn half_tile256_for(int mr) {
  if constexpr (MR == 0) {
    return nullptr;
  } else {
    if (mr == MR) return &half_tile_avx2<MR>;
    return half_tile256_for<MR - 1>(mr);
  }
}

void run_tiles(const PackedLinearWeights& w, const float* x, int64_t batch, bool relu, float* y, bool wide) {
  const int max_rows = wide ? kMaxRows512 : kMaxRows256;
  const int64_t stride = w.cols * kPackedPanel;
  const int64_t grain = std::max<int64_t>(1, kMinMacsPerThread / std::max<int64_t>(1, batch * stride));
  // Tiles of one row span several panels; taller ones one panel (AVX2: half a panel).
  const int64_t first_rows = std::min<int64_t>(max_rows, batch);
  const int64_t group = wide ? panels512(static_cast<int>(first_rows)) : first_rows == 1 ? 2 : 1;
  // Rows in chunks of about kRowChunkBytes of input, whole tiles; one chunk for a batch that fits.
  const int64_t chunk = std::max<int64_t>(max_rows, kRowChunkBytes / (w.cols * 4) / max_rows * max_rows);
  at::parallel_for(0, w.panel_count(), grain, [&](int64_t p0, int64_t p1) {
    // Panels inside chunks of rows: a panel's weights (32 × 4 bytes an input feature) stay in L2
    // while every tile of the chunk passes them, and the chunk stays in L2 while the panels pass it.
    // Panels outer over the whole batch streamed the input from L3 once a panel (MiniLM's 4096 × 384
    // → 1536, calls alternated: 40.9–50.9 → 35.1–42.8 ms), rows outer all of W once a tile.
    for (int64_t c0 = 0; c0 < batch; c0 += chunk) {
      const int64_t c1 = std::min(batch, c0 + chunk);
      for (int64_t p = p0; p < p1; p += group) {
        const int np = static_cast<int>(std::min<int64_t>(group, p1 - p));
        // AVX-512 tiles of one panel fetch the next panel into L2, its lines shared out between the
        // chunk's tiles: a model's weights (MiniLM's 42 MB) come from memory, and the first tile of
        // each panel waited for them. MiniLM at 1 × 32 tokens, calls alternated with and without:
        // its Linear layers 8.0–8.4 ms against 9.9–11.7. Tiles of several panels (up to 6 rows)
        // leave it to the hardware: a prefetch there measured no faster.
        const int64_t next = wide && group == 1 && p + 1 < p1 ? p + 1 : -1;
        const int64_t lines = next < 0 ? 0 : stride * static_cast<int64_t>(sizeof(float)) / 64;
        const int64_t tiles = (c1 - c0 + max_rows - 1) / max_rows;
        const int64_t share = ((lines + tiles - 1) / tiles + 1) / 2 * 2;  // even: two lines a step
        for (int64_t m0 = c0; m0 < c1; m0 += max_rows) {
          const int mr = static_cast<int>(std::min<int64_t>(max_rows, c1 - m0));
          const int64_t t = (m0 - c0) / max_rows, first = std::min(lines, t * share);
          // The tile's rows from m0, its columns from col0, its weights from `panel`.
          const auto args = [&](int64_t col0, const float* panel) {
            return TileArgs{
                x + m0 * w.cols,
                w.cols,
                panel,
                w.bias.data() + col0,
                y + m0 * w.rows + col0,
                w.rows,
                w.rows - col0,
                relu,
                next < 0 ? nullptr : reinterpret_cast<const char*>(w.panels.data() + next * stride) + 64 * first,
                std::min(lines, first + share) - first};
          };
          if (wide) {
            tile512_for<kMaxRows512>(mr, np)(args(p * kPackedPanel, w.panels.data() + p * stride));
          } else if (mr == 1 && group == 2) {
            (np == 2 ? &row_tile_avx2<2> : &row_tile_avx2<1>)(args(p * kPackedPanel, w.panels.data() + p * stride));
          } else {
            for (int64_t h = 0; h < 2 && p * kPackedPanel + h * 16 < w.rows; ++h) {
              half_tile256_for<kMaxRows256>(mr)(args(p * kPackedPanel + h * 16, w.panels.data() + p * stride + h * 16));
            }
          }
        }
      }
    }
  });
}
#endif

}  // namespace

PackedLinearWeights pack_linear(const at::Tensor& weight, const at::Tensor& bias) {
  SHRINK_CHECK(weight.dim() == 2 && weight.size(0) > 0 && weight.size(1) > 0,
               "packed Linear: weight must be 2-D and non-empty, got shape ", weight.sizes());
  PackedLinearWeights w;
  w.rows = weight.size(0);
  w.cols = weight.size(1);
  const int64_t panels = w.panel_count();
  SHRINK_CHECK(w.cols <= std::numeric_limits<int64_t>::max() / kPackedPanel / panels, "packed Linear: weight of shape ",
               weight.sizes(), " is too large to pack");
  const auto t = weight.detach().to(at::kCPU, at::kFloat).contiguous();
  const float* src = t.data_ptr<float>();
  w.panels.assign(static_cast<size_t>(panels * w.cols * kPackedPanel), 0.0f);
  for (int64_t r = 0; r < w.rows; ++r) {
    float* dst = w.panels.data() + (r / kPackedPanel) * w.cols * kPackedPanel + r % kPackedPanel;
    for (int64_t k = 0; k < w.cols; ++k) dst[k * kPackedPanel] = src[r * w.cols + k];
  }
  w.bias.assign(static_cast<size_t>(panels * kPackedPanel), 0.0f);
  if (bias.defined()) {
    SHRINK_CHECK(bias.dim() == 1 && bias.size(0) == w.rows, "packed Linear: bias must have ", w.rows,
                 " values, got shape ", bias.sizes());
    const auto b = bias.detach().to(at::kCPU, at::kFloat).contiguous();
    std::copy(b.data_ptr<float>(), b.data_ptr<float>() + w.rows, w.bias.begin());
  }
  return w;
}

void packed_linear_reference(const PackedLinearWeights& w, const float* x, int64_t batch, bool relu, float* y) {
  check_args(w, x, batch, y);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t r = 0; r < w.rows; ++r) {
      const float* col = w.panels.data() + (r / kPackedPanel) * w.cols * kPackedPanel + r % kPackedPanel;
      float acc = 0.0f;
      for (int64_t k = 0; k < w.cols; ++k) acc = std::fma(col[k * kPackedPanel], x[b * w.cols + k], acc);
      y[b * w.rows + r] = finish(acc, w.bias[static_cast<size_t>(r)], relu);
    }
  }
}

void packed_linear(const PackedLinearWeights& w, const float* x, int64_t batch, bool relu, float* y, VectorPath path) {
  check_vector_path(path, "packed Linear");
  if (path == VectorPath::kReference) return packed_linear_reference(w, x, batch, relu, y);
  check_args(w, x, batch, y);
#ifdef SHRINK_X86
  run_tiles(w, x, batch, relu, y, path == VectorPath::kAvx512);
#else
  SHRINK_CHECK(false, "packed Linear: ", path_name(path), " path built without x86 kernels");
#endif
}

at::Tensor packed_linear(const PackedLinearWeights& w, const at::Tensor& x, bool relu, VectorPath path) {
  SHRINK_CHECK(x.dim() == 2 && x.size(1) == w.cols, "packed Linear: input must be [batch, ", w.cols, "], got shape ",
               x.sizes());
  const auto in = x.to(at::kFloat).contiguous();
  auto y = at::empty({in.size(0), w.rows}, in.options());
  packed_linear(w, in.data_ptr<float>(), in.size(0), relu, y.data_ptr<float>(), path);
  return y;
}

}  // namespace shrink::runtime
