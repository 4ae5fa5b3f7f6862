// CSR Linear: scalar reference; AVX2 and AVX-512 paths. One sample gathers x at each stored
// column; a batch is transposed so that each stored value multiplies a contiguous run of samples
// (vectorised across the batch), and threads split the batch, which scales where splitting rows
// did not (shared/notes: sparse).
#include "runtime/csr_linear.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <limits>

#include "core/cpu_features.h"  // SHRINK_X86
#include "core/error.h"

#ifdef SHRINK_X86
#include <immintrin.h>
#endif

namespace shrink::runtime {

namespace {

// Below this many stored values one sample is not worth a second thread.
constexpr int64_t kMinNnzPerThread = 32768;

std::vector<float> bias_values(const at::Tensor& bias, int64_t rows) {
  if (!bias.defined()) return std::vector<float>(static_cast<size_t>(rows), 0.0f);
  SHRINK_CHECK(bias.dim() == 1 && bias.size(0) == rows, "CSR Linear: bias must have ", rows, " values, got shape ",
               bias.sizes());
  const auto b = bias.detach().to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(b.data_ptr<float>(), b.data_ptr<float>() + rows);
}

// Row pointers and columns of the nonzeros of `t` (2-D, CPU, contiguous), calling `keep(index)`
// for each nonzero in row-major order.
template <class T, class Keep>
void build_structure(const at::Tensor& t, CsrWeights& w, Keep keep) {
  SHRINK_CHECK(t.dim() == 2, "CSR Linear: weight must be 2-D, got shape ", t.sizes());
  SHRINK_CHECK(t.numel() < std::numeric_limits<int32_t>::max(), "CSR Linear: weight of ", t.numel(),
               " values is past the kernel's 32-bit indices");
  w.rows = t.size(0);
  w.cols = t.size(1);
  const T* v = t.data_ptr<T>();
  w.row_ptr.assign(1, 0);
  w.row_ptr.reserve(static_cast<size_t>(w.rows) + 1);
  for (int64_t r = 0; r < w.rows; ++r) {
    for (int64_t c = 0; c < w.cols; ++c) {
      const int64_t i = r * w.cols + c;
      if (v[i] != T(0)) {
        w.col.push_back(static_cast<int32_t>(c));
        keep(i);
      }
    }
    w.row_ptr.push_back(static_cast<int32_t>(w.col.size()));
  }
}

// Value k as a float before the row's scale (int8: the integer itself).
inline float value(const CsrWeights& w, int64_t k) {
  return w.int8() ? static_cast<float>(w.qvalues[static_cast<size_t>(k)]) : w.values[static_cast<size_t>(k)];
}

inline float finish(const CsrWeights& w, int64_t r, float acc, bool relu) {
  const float y = (w.int8() ? acc * w.scales[static_cast<size_t>(r)] : acc) + w.bias[static_cast<size_t>(r)];
  return relu ? std::max(y, 0.0f) : y;
}

void check_args(const CsrWeights& w, const float* x, int64_t batch, const float* y) {
  SHRINK_CHECK(batch >= 0, "CSR Linear: batch must be >= 0, got ", batch);
  SHRINK_CHECK(static_cast<int64_t>(w.row_ptr.size()) == w.rows + 1 && static_cast<int64_t>(w.bias.size()) == w.rows &&
                   (w.int8() ? w.qvalues.size() == w.col.size() && static_cast<int64_t>(w.scales.size()) == w.rows
                             : w.values.size() == w.col.size()),
               "CSR Linear: inconsistent weights (", w.rows, " rows, ", w.row_ptr.size(), " row pointers, ",
               w.col.size(), " columns)");
  SHRINK_CHECK(batch == 0 || (x != nullptr && y != nullptr), "CSR Linear: null input or output");
}

#ifdef SHRINK_X86
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns about its own AVX-512 headers (their _mm512_undefined_* values initialise
// themselves, GCC bug 105593) wherever those intrinsics inline into these kernels.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// ---- one sample: gather x at the stored columns ----

__attribute__((target("avx2,fma"))) inline __m256 values8(const CsrWeights& w, int64_t k) {
  if (w.int8()) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(&w.qvalues[k]))));
  }
  return _mm256_loadu_ps(&w.values[static_cast<size_t>(k)]);
}

__attribute__((target("avx2,fma"))) void gather_rows_avx2(const CsrWeights& w, const float* x, bool relu, float* y,
                                                          int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    int64_t k = w.row_ptr[r];
    const int64_t end = w.row_ptr[r + 1];
    __m256 acc = _mm256_setzero_ps();
    for (; k + 8 <= end; k += 8) {
      const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&w.col[static_cast<size_t>(k)]));
      acc = _mm256_fmadd_ps(values8(w, k), _mm256_i32gather_ps(x, idx, 4), acc);
    }
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    float s = _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
    for (; k < end; ++k) s += value(w, k) * x[w.col[static_cast<size_t>(k)]];
    y[r] = finish(w, r, s, relu);
  }
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512 values16(const CsrWeights& w, int64_t k,
                                                                            __mmask16 m) {
  if (w.int8()) {
    const __m128i q = _mm_maskz_loadu_epi8(m, &w.qvalues[static_cast<size_t>(k)]);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
  }
  return _mm512_maskz_loadu_ps(m, &w.values[static_cast<size_t>(k)]);
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void gather_rows_avx512(const CsrWeights& w, const float* x,
                                                                             bool relu, float* y, int64_t r0,
                                                                             int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t begin = w.row_ptr[r], end = w.row_ptr[r + 1];
    __m512 acc = _mm512_setzero_ps();
    for (int64_t k = begin; k < end; k += 16) {
      const __mmask16 m = end - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (end - k)) - 1);
      const __m512i idx = _mm512_maskz_loadu_epi32(m, &w.col[static_cast<size_t>(k)]);
      const __m512 xv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, x, 4);
      acc = _mm512_fmadd_ps(values16(w, k, m), xv, acc);
    }
    y[r] = finish(w, r, _mm512_reduce_add_ps(acc), relu);
  }
}

// ---- a batch: xt is x transposed, [cols, batch]; each value scales a run of samples ----

// dst[c][r] = src[r][c] for a rows × cols block (row strides given), 8×8 blocks moved through registers (scalar at the
// ragged edges): the two transposes of a batch otherwise cost as much as a 90 %-sparse product.
__attribute__((target("avx2"))) void transpose_avx2(const float* src, int64_t rows, int64_t cols, int64_t src_stride,
                                                    float* dst, int64_t dst_stride) {
  const int64_t r8 = rows / 8 * 8, c8 = cols / 8 * 8;
  for (int64_t r = 0; r < r8; r += 8) {
    for (int64_t c = 0; c < c8; c += 8) {
      __m256 v[8], t[8];
      for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(src + (r + i) * src_stride + c);
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {
        v[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        v[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        v[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        v[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
      }
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dst + (c + i) * dst_stride + r, _mm256_permute2f128_ps(v[i], v[i + 4], 0x20));
        _mm256_storeu_ps(dst + (c + i + 4) * dst_stride + r, _mm256_permute2f128_ps(v[i], v[i + 4], 0x31));
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = r < r8 ? c8 : 0; c < cols; ++c) dst[c * dst_stride + r] = src[r * src_stride + c];
  }
}

// Samples [b0, b0 + n) of every row into yt [rows, batch], NV vectors of 8 (n <= 8 · NV). Two
// stored values at a time into two sets of accumulators: one set alone waits on the FMA latency.
template <int NV, class V>
__attribute__((target("avx2,fma"))) void batch_rows_avx2(const CsrWeights& w, const V* vals, const float* xt,
                                                         int64_t batch, int64_t b0, int64_t n, bool relu, float* yt) {
  __m256i mask[NV];
  for (int j = 0; j < NV; ++j) {
    const int64_t left = std::clamp<int64_t>(n - 8 * j, 0, 8);
    alignas(32) int32_t bits[8];
    for (int i = 0; i < 8; ++i) bits[i] = i < left ? -1 : 0;
    mask[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bits));
  }
  const int32_t* col = w.col.data();
  for (int64_t r = 0; r < w.rows; ++r) {
    __m256 a0[NV], a1[NV];
    for (int j = 0; j < NV; ++j) a0[j] = a1[j] = _mm256_setzero_ps();
    int64_t k = w.row_ptr[r];
    const int64_t end = w.row_ptr[r + 1];
    for (; k + 2 <= end; k += 2) {
      const __m256 v0 = _mm256_set1_ps(static_cast<float>(vals[k]));
      const __m256 v1 = _mm256_set1_ps(static_cast<float>(vals[k + 1]));
      const float* p0 = xt + static_cast<int64_t>(col[k]) * batch + b0;
      const float* p1 = xt + static_cast<int64_t>(col[k + 1]) * batch + b0;
      for (int j = 0; j < NV; ++j) {
        a0[j] = _mm256_fmadd_ps(v0, _mm256_maskload_ps(p0 + 8 * j, mask[j]), a0[j]);
        a1[j] = _mm256_fmadd_ps(v1, _mm256_maskload_ps(p1 + 8 * j, mask[j]), a1[j]);
      }
    }
    if (k < end) {
      const __m256 v = _mm256_set1_ps(static_cast<float>(vals[k]));
      const float* p = xt + static_cast<int64_t>(col[k]) * batch + b0;
      for (int j = 0; j < NV; ++j) a0[j] = _mm256_fmadd_ps(v, _mm256_maskload_ps(p + 8 * j, mask[j]), a0[j]);
    }
    const __m256 scale = _mm256_set1_ps(w.int8() ? w.scales[static_cast<size_t>(r)] : 1.0f);
    const __m256 bias = _mm256_set1_ps(w.bias[static_cast<size_t>(r)]);
    for (int j = 0; j < NV; ++j) {
      __m256 out = _mm256_fmadd_ps(_mm256_add_ps(a0[j], a1[j]), scale, bias);
      if (relu) out = _mm256_max_ps(out, _mm256_setzero_ps());
      _mm256_maskstore_ps(yt + r * batch + b0 + 8 * j, mask[j], out);
    }
  }
}

template <int NV, class V>
__attribute__((target("avx512f"))) void batch_rows_avx512(const CsrWeights& w, const V* vals, const float* xt,
                                                          int64_t batch, int64_t b0, int64_t n, bool relu, float* yt) {
  __mmask16 mask[NV];
  for (int j = 0; j < NV; ++j) {
    const int64_t left = std::clamp<int64_t>(n - 16 * j, 0, 16);
    mask[j] = left == 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
  }
  const int32_t* col = w.col.data();
  for (int64_t r = 0; r < w.rows; ++r) {
    __m512 a0[NV], a1[NV];
    for (int j = 0; j < NV; ++j) a0[j] = a1[j] = _mm512_setzero_ps();
    int64_t k = w.row_ptr[r];
    const int64_t end = w.row_ptr[r + 1];
    for (; k + 2 <= end; k += 2) {
      const __m512 v0 = _mm512_set1_ps(static_cast<float>(vals[k]));
      const __m512 v1 = _mm512_set1_ps(static_cast<float>(vals[k + 1]));
      const float* p0 = xt + static_cast<int64_t>(col[k]) * batch + b0;
      const float* p1 = xt + static_cast<int64_t>(col[k + 1]) * batch + b0;
      for (int j = 0; j < NV; ++j) {
        a0[j] = _mm512_fmadd_ps(v0, _mm512_maskz_loadu_ps(mask[j], p0 + 16 * j), a0[j]);
        a1[j] = _mm512_fmadd_ps(v1, _mm512_maskz_loadu_ps(mask[j], p1 + 16 * j), a1[j]);
      }
    }
    if (k < end) {
      const __m512 v = _mm512_set1_ps(static_cast<float>(vals[k]));
      const float* p = xt + static_cast<int64_t>(col[k]) * batch + b0;
      for (int j = 0; j < NV; ++j) a0[j] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(mask[j], p + 16 * j), a0[j]);
    }
    const __m512 scale = _mm512_set1_ps(w.int8() ? w.scales[static_cast<size_t>(r)] : 1.0f);
    const __m512 bias = _mm512_set1_ps(w.bias[static_cast<size_t>(r)]);
    for (int j = 0; j < NV; ++j) {
      __m512 out = _mm512_fmadd_ps(_mm512_add_ps(a0[j], a1[j]), scale, bias);
      if (relu) out = _mm512_max_ps(out, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(yt + r * batch + b0 + 16 * j, mask[j], out);
    }
  }
}

// Up to four vectors of samples per pass over the weights: enough to amortise reading them,
// few enough to stay in registers.
template <class V>
void batch_block(const CsrWeights& w, const V* vals, const float* xt, int64_t batch, int64_t b0, int64_t n, bool relu,
                 float* yt, VectorPath path) {
  const int width = path == VectorPath::kAvx512 ? 16 : 8;
  for (int64_t s = b0; s < b0 + n; s += 4 * width) {
    const int64_t m = std::min<int64_t>(4 * width, b0 + n - s);
    const int nv = static_cast<int>((m + width - 1) / width);
    if (path == VectorPath::kAvx512) {
      switch (nv) {
        case 1:
          batch_rows_avx512<1>(w, vals, xt, batch, s, m, relu, yt);
          break;
        case 2:
          batch_rows_avx512<2>(w, vals, xt, batch, s, m, relu, yt);
          break;
        case 3:
          batch_rows_avx512<3>(w, vals, xt, batch, s, m, relu, yt);
          break;
        default:
          batch_rows_avx512<4>(w, vals, xt, batch, s, m, relu, yt);
          break;
      }
    } else {
      switch (nv) {
        case 1:
          batch_rows_avx2<1>(w, vals, xt, batch, s, m, relu, yt);
          break;
        case 2:
          batch_rows_avx2<2>(w, vals, xt, batch, s, m, relu, yt);
          break;
        case 3:
          batch_rows_avx2<3>(w, vals, xt, batch, s, m, relu, yt);
          break;
        default:
          batch_rows_avx2<4>(w, vals, xt, batch, s, m, relu, yt);
          break;
      }
    }
  }
}

void batch_block(const CsrWeights& w, const float* xt, int64_t batch, int64_t b0, int64_t n, bool relu, float* yt,
                 VectorPath path) {
  if (w.int8()) {
    batch_block(w, w.qvalues.data(), xt, batch, b0, n, relu, yt, path);
  } else {
    batch_block(w, w.values.data(), xt, batch, b0, n, relu, yt, path);
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // SHRINK_X86

}  // namespace

double CsrWeights::sparsity() const {
  const double total = static_cast<double>(rows) * static_cast<double>(cols);
  return total > 0 ? 1.0 - static_cast<double>(nnz()) / total : 0.0;
}

CsrWeights csr_from_dense(const at::Tensor& weight, const at::Tensor& bias) {
  SHRINK_CHECK(weight.is_floating_point(), "CSR Linear: fp32 weights expected, got ", weight.scalar_type());
  const auto t = weight.detach().to(at::kCPU, at::kFloat).contiguous();
  CsrWeights w;
  const float* v = t.data_ptr<float>();
  build_structure<float>(t, w, [&](int64_t i) { w.values.push_back(v[i]); });
  w.bias = bias_values(bias, w.rows);
  return w;
}

CsrWeights csr_from_int8(const at::Tensor& values, const std::vector<float>& scales, const at::Tensor& bias) {
  SHRINK_CHECK(values.scalar_type() == at::kChar, "CSR Linear: int8 values expected, got ", values.scalar_type());
  const auto t = values.detach().to(at::kCPU).contiguous();
  CsrWeights w;
  const int8_t* v = t.data_ptr<int8_t>();
  build_structure<int8_t>(t, w, [&](int64_t i) { w.qvalues.push_back(v[i]); });
  SHRINK_CHECK(static_cast<int64_t>(scales.size()) == w.rows || scales.size() == 1, "CSR Linear: ", w.rows,
               " rows need one scale each or one for all, got ", scales.size());
  w.scales = scales.size() == 1 ? std::vector<float>(static_cast<size_t>(w.rows), scales[0]) : scales;
  w.bias = bias_values(bias, w.rows);
  return w;
}

void csr_linear_reference(const CsrWeights& w, const float* x, int64_t batch, bool relu, float* y) {
  check_args(w, x, batch, y);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t r = 0; r < w.rows; ++r) {
      float acc = 0.0f;
      for (int64_t k = w.row_ptr[r]; k < w.row_ptr[r + 1]; ++k) acc += value(w, k) * x[b * w.cols + w.col[k]];
      y[b * w.rows + r] = finish(w, r, acc, relu);
    }
  }
}

void csr_linear(const CsrWeights& w, const float* x, int64_t batch, bool relu, float* y, VectorPath path) {
  check_vector_path(path, "CSR Linear");
  if (path == VectorPath::kReference) return csr_linear_reference(w, x, batch, relu, y);
  check_args(w, x, batch, y);
#ifdef SHRINK_X86
  // A few samples: gather per sample (transposing would cost more than it saves).
  if (batch < 4) {
    const int64_t grain = std::max<int64_t>(1, w.rows * kMinNnzPerThread / std::max<int64_t>(w.nnz(), 1));
    for (int64_t b = 0; b < batch; ++b) {
      at::parallel_for(0, w.rows, grain, [&](int64_t r0, int64_t r1) {
        if (path == VectorPath::kAvx512) {
          gather_rows_avx512(w, x + b * w.cols, relu, y + b * w.rows, r0, r1);
        } else {
          gather_rows_avx2(w, x + b * w.cols, relu, y + b * w.rows, r0, r1);
        }
      });
    }
    return;
  }
  // Threads take slices of the batch. Each transposes its slice to xt [cols, n] (so a stored value
  // multiplies n contiguous samples), runs the rows into yt [rows, n] and transposes that back.
  const int64_t width = path == VectorPath::kAvx512 ? 16 : 8;
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), batch / width));
  const int64_t per_thread = (batch + threads - 1) / threads;
  const int64_t chunk = (per_thread + width - 1) / width * width;
  at::parallel_for(0, (batch + chunk - 1) / chunk, 1, [&](int64_t c0, int64_t c1) {
    thread_local std::vector<float> xt, yt;
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t b0 = c * chunk, n = std::min(chunk, batch - b0);
      xt.resize(static_cast<size_t>(w.cols * n));
      yt.resize(static_cast<size_t>(w.rows * n));
      transpose_avx2(x + b0 * w.cols, n, w.cols, w.cols, xt.data(), n);
      batch_block(w, xt.data(), n, 0, n, relu, yt.data(), path);
      transpose_avx2(yt.data(), w.rows, n, n, y + b0 * w.rows, w.rows);
    }
  });
#else
  SHRINK_CHECK(false, "CSR Linear: ", path_name(path), " path built without x86 kernels");
#endif
}

at::Tensor csr_linear(const CsrWeights& w, const at::Tensor& x, bool relu) {
  return csr_linear(w, x, relu, best_vector_path());
}

at::Tensor csr_linear(const CsrWeights& w, const at::Tensor& x, bool relu, VectorPath path) {
  SHRINK_CHECK(x.dim() == 2 && x.size(1) == w.cols, "CSR Linear: input must be [batch, ", w.cols, "], got shape ",
               x.sizes());
  const auto in = x.to(at::kFloat).contiguous();
  auto y = at::empty({in.size(0), w.rows}, in.options());
  csr_linear(w, in.data_ptr<float>(), in.size(0), relu, y.data_ptr<float>(), path);
  return y;
}

}  // namespace shrink::runtime
