// shrink's own sparse Linear kernel for pruned layers: y = x·Wᵀ + b with W in CSR, its values fp32
// or int8 with a scale per row. LibTorch's sparse kernels are slower than dense in this build, so
// pruning saved bytes but never time; this kernel turns sparsity into speed. A plain scalar
// reference, and AVX2 / AVX-512 paths tested against it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/vector_path.h"

namespace shrink::runtime {

struct CsrWeights {
  int64_t rows = 0, cols = 0;
  std::vector<int32_t> row_ptr;  // rows + 1 offsets into col / values
  std::vector<int32_t> col;      // column of each stored value
  std::vector<float> values;     // fp32 values (empty for int8 weights)
  std::vector<int8_t> qvalues;   // int8 values (empty for fp32 weights)
  std::vector<float> scales;     // int8 only: per row, value = qvalue · scale
  std::vector<float> bias;       // per row (zeros when the layer has none)

  bool int8() const { return !scales.empty(); }
  int64_t nnz() const { return static_cast<int64_t>(col.size()); }
  double sparsity() const;
};

// From a dense fp32 weight [rows, cols] and an optional bias (undefined: zeros).
CsrWeights csr_from_dense(const at::Tensor& weight, const at::Tensor& bias);
// From int8 values [rows, cols] (zero point 0) with one scale per row or one for all.
CsrWeights csr_from_int8(const at::Tensor& values, const std::vector<float>& scales, const at::Tensor& bias);

// x: [batch, cols] row-major fp32; y: [batch, rows]. `relu` clamps the outputs at zero.
void csr_linear_reference(const CsrWeights& w, const float* x, int64_t batch, bool relu, float* y);
// One path (tests compare each with the reference); an Error when the CPU lacks it. On this
// machine AVX-512 is about even with AVX2 for one sample and 1.2–1.3x faster for a batch (bench:
// BM_CsrLinear); inference plans time each.
// Threads split the batch (or, for one sample, the rows of a large matrix).
void csr_linear(const CsrWeights& w, const float* x, int64_t batch, bool relu, float* y, VectorPath path);
// On a float tensor [batch, cols] (any layout) → [batch, rows]; by default best_vector_path().
at::Tensor csr_linear(const CsrWeights& w, const at::Tensor& x, bool relu);
at::Tensor csr_linear(const CsrWeights& w, const at::Tensor& x, bool relu, VectorPath path);

}  // namespace shrink::runtime
