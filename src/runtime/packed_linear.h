// shrink's dense fp32 Linear for inference: y = x·Wᵀ + b, ReLU fused, with W packed once into
// panels of 32 output features. A BLAS GEMM packs W again on every call (OpenBLAS's copy routines
// took 2.5 % of a convnet benchmark's samples against 5.3 % for its multiply kernel, batch 64);
// inference plans pack it once. A plain scalar reference, and AVX2 / AVX-512 paths that sum in the reference's order
// (one fused multiply-add per input feature, in ascending order), so every path gives the reference's bits.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "runtime/vector_path.h"

namespace shrink::runtime {

// Output features a panel holds: two AVX-512 vectors, four AVX2 ones.
constexpr int64_t kPackedPanel = 32;

struct PackedLinearWeights {
  int64_t rows = 0, cols = 0;  // output features, input features
  // ceil(rows / 32) panels of [cols][32]: panel p, input feature k holds W[32p .. 32p+31][k];
  // features past `rows` in the last panel are zeros.
  std::vector<float> panels;
  std::vector<float> bias;  // one per panel column (zeros past `rows`, and without a bias)

  int64_t panel_count() const { return (rows + kPackedPanel - 1) / kPackedPanel; }
};

// From a 2-D fp32 weight [rows, cols] and an optional bias (undefined: zeros).
PackedLinearWeights pack_linear(const at::Tensor& weight, const at::Tensor& bias);

// x: [batch, cols] row-major; y: [batch, rows]. `relu` clamps at zero as at::relu does (NaN passes).
void packed_linear_reference(const PackedLinearWeights& w, const float* x, int64_t batch, bool relu, float* y);
// One path (tests compare each with the reference); an Error when the CPU lacks it. Threads split
// the panels.
void packed_linear(const PackedLinearWeights& w, const float* x, int64_t batch, bool relu, float* y, VectorPath path);
// On a float tensor [batch, cols] (any layout) → [batch, rows].
at::Tensor packed_linear(const PackedLinearWeights& w, const at::Tensor& x, bool relu, VectorPath path);

}  // namespace shrink::runtime
