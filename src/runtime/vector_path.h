// The instruction paths of shrink's kernels that come in a plain scalar reference, an AVX2 and an
// AVX-512 version (packed and CSR Linear, quantize_row, float_range, the int8 add, the fused ReLU +
// max pooling, the int8 max pooling); tests run every path this CPU has against the reference.
// The int8 convolution tiles have paths of their own (int8_path.h: VNNI variants).
#pragma once

#include <string>
#include <vector>

namespace shrink::runtime {

enum class VectorPath { kReference, kAvx2, kAvx512 };

std::string path_name(VectorPath path);
// Whether this CPU (under SHRINK_MAX_CPU_ISA's cap) can run `path`.
bool vector_path_available(VectorPath path);
// The paths this CPU has, widest first (AVX-512, AVX2, the reference). Inference plans time each
// where it matters.
std::vector<VectorPath> vector_paths();
// The first of vector_paths(): the widest this CPU has.
VectorPath best_vector_path();
// An Error naming `kernel`, the path and this CPU's paths when the CPU lacks `path`.
void check_vector_path(VectorPath path, const char* kernel);

}  // namespace shrink::runtime
