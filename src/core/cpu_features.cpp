// CPU feature detection, each answer computed once.
#include "core/cpu_features.h"

#ifdef SHRINK_X86
#include <cpuid.h>
#endif

namespace shrink::core {

#ifdef SHRINK_X86
bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

bool cpu_has_avx512() {
  static const bool has =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return has;
}

bool cpu_has_avx_vnni() {
  // CPUID leaf 7, subleaf 1, EAX bit 4; read directly because clang 14's
  // __builtin_cpu_supports does not know "avxvnni".
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4));
  }();
  return has;
}
#else
bool cpu_has_avx2() { return false; }
bool cpu_has_avx2_fma() { return false; }
bool cpu_has_avx512() { return false; }
bool cpu_has_avx_vnni() { return false; }
#endif

}  // namespace shrink::core
