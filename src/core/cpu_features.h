// What the CPU's vector units can do, read once: the kernels with AVX2 / AVX-512 / AVX-VNNI paths
// (CSR Linear, int8 Conv2d and Linear, fused ReLU + pooling, fused SGD) choose their path from here. A cap set
// in the environment narrows it, so one machine can run the paths of CPUs it is not (tests).
#pragma once

#include <string>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#define SHRINK_X86 1
#endif

namespace shrink::core {

bool cpu_has_avx2();
bool cpu_has_avx2_fma();
// AVX-512 F, BW and VL: what shrink's AVX-512 paths use.
bool cpu_has_avx512();
bool cpu_has_avx_vnni();
// AVX-512 VNNI with F, BW and VL (Cascade Lake and later Xeons, Zen 4).
bool cpu_has_avx512_vnni();
// u8 × s8 dot products into 32 bits in one instruction (AVX512-VNNI, AVX-VNNI; AMX counts too).
// Without them oneDNN's int8 kernels add pairs of products in 16 bits first (vpmaddubsw), which
// saturates when both are large.
bool cpu_has_int8_vnni();

// The widest path shrink's kernels may take, in oneDNN's terms. AVX-VNNI (the VEX encoding of
// Alder Lake, Sapphire Rapids and Zen 4) belongs to avx2_vnni and to no avx512_core* level: the
// CPUs those name (Skylake-X, Cascade and Cooper Lake) lack it.
enum class IsaCap { kScalar, kAvx2, kAvx2Vnni, kAvx512Core, kAvx512CoreVnni, kAll };

// Parses a cap, case-insensitively: scalar|sse41, avx|avx2, avx2_vnni, avx512_core,
// avx512_core_vnni|_bf16|_fp16, avx512_core_amx|all. Throws an Error naming `variable` otherwise.
IsaCap parse_isa_cap(const std::string& value, const std::string& variable);
// SHRINK_MAX_CPU_ISA, else oneDNN's DNNL_MAX_CPU_ISA / ONEDNN_MAX_CPU_ISA (a value shrink does not
// know there means no cap), else kAll; read once.
IsaCap isa_cap();
// The instruction sets the path `cap` names (in Linux's /proc/cpuinfo spelling) that this CPU
// itself lacks, whatever the environment's cap: empty when it has them all (and for kScalar and
// kAll, which name none). A capped run on a path the CPU lacks repeats a narrower one, and ATen
// dispatched there (ATEN_CPU_CAPABILITY) executes instructions the CPU does not have.
std::vector<std::string> cpu_lacks(IsaCap cap);
// "avx512, avx_vnni" style list of what shrink's kernels may use, for logs and reports.
std::string cpu_paths();

}  // namespace shrink::core
