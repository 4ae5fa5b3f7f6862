// What the CPU's vector units can do, read once: the kernels with AVX2 / AVX-512 / AVX-VNNI paths
// (CSR Linear, int8 GEMV, fused ReLU + pooling, fused SGD) choose their path from here.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#define SHRINK_X86 1
#endif

namespace shrink::core {

bool cpu_has_avx2();
bool cpu_has_avx2_fma();
// AVX-512 F, BW and VL: what shrink's AVX-512 paths use.
bool cpu_has_avx512();
bool cpu_has_avx_vnni();

}  // namespace shrink::core
