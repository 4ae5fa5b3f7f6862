// CPU feature detection, each answer computed once and narrowed by the environment's cap.
#include "core/cpu_features.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <utility>

#include "core/error.h"

#ifdef SHRINK_X86
#include <cpuid.h>
#endif

namespace shrink::core {

IsaCap parse_isa_cap(const std::string& value, const std::string& variable) {
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (v == "scalar" || v == "sse41") return IsaCap::kScalar;
  if (v == "avx" || v == "avx2") return IsaCap::kAvx2;
  if (v == "avx2_vnni") return IsaCap::kAvx2Vnni;
  if (v == "avx512_core") return IsaCap::kAvx512Core;
  if (v == "avx512_core_vnni" || v == "avx512_core_bf16" || v == "avx512_core_fp16") return IsaCap::kAvx512CoreVnni;
  if (v == "avx512_core_amx" || v == "all") return IsaCap::kAll;
  throw UsageError(cat(variable, "=", value,
                       " is not a CPU path shrink knows; expected one of scalar, sse41, avx2, avx2_vnni, ",
                       "avx512_core, avx512_core_vnni, avx512_core_bf16, avx512_core_fp16, avx512_core_amx, all"));
}

IsaCap isa_cap() {
  static const IsaCap cap = [] {
    if (const char* own = std::getenv("SHRINK_MAX_CPU_ISA"); own && *own)
      return parse_isa_cap(own, "SHRINK_MAX_CPU_ISA");
    for (const char* name : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"}) {
      if (const char* v = std::getenv(name); v && *v) {
        try {
          return parse_isa_cap(v, name);
        } catch (const Error&) {
          return IsaCap::kAll;  // oneDNN's own value (a newer ISA): no narrower cap for shrink
        }
      }
    }
    return IsaCap::kAll;
  }();
  return cap;
}

#ifdef SHRINK_X86
bool cpu_has_avx2() {
  static const bool has = isa_cap() >= IsaCap::kAvx2 && __builtin_cpu_supports("avx2");
  return has;
}

bool cpu_has_avx2_fma() {
  static const bool has = cpu_has_avx2() && __builtin_cpu_supports("fma");
  return has;
}

bool cpu_has_avx512() {
  static const bool has = isa_cap() >= IsaCap::kAvx512Core && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return has;
}

namespace {

// CPUID leaf 7, subleaf 1, EAX bit 4; read directly because clang 14's __builtin_cpu_supports does
// not know "avxvnni". The CPU's own answer, uncapped.
bool cpuid_avx_vnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 4));
}

}  // namespace

bool cpu_has_avx_vnni() {
  static const bool has = [] {
    const auto cap = isa_cap();
    return (cap == IsaCap::kAvx2Vnni || cap == IsaCap::kAll) && cpu_has_avx2() && cpuid_avx_vnni();
  }();
  return has;
}
bool cpu_has_avx512_vnni() {
  static const bool has =
      isa_cap() >= IsaCap::kAvx512CoreVnni && cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
  return has;
}

bool cpu_has_int8_vnni() { return cpu_has_avx512_vnni() || cpu_has_avx_vnni(); }

std::vector<std::string> cpu_lacks(IsaCap cap) {
  if (cap == IsaCap::kScalar || cap == IsaCap::kAll) return {};
  std::vector<std::pair<const char*, bool>> needed = {{"avx2", __builtin_cpu_supports("avx2")},
                                                      {"fma", __builtin_cpu_supports("fma")}};
  if (cap == IsaCap::kAvx2Vnni) needed.emplace_back("avx_vnni", cpuid_avx_vnni());
  // ATen's and oneDNN's AVX-512 levels need DQ besides shrink's F, BW and VL.
  if (cap >= IsaCap::kAvx512Core) {
    needed.insert(needed.end(), {{"avx512f", __builtin_cpu_supports("avx512f")},
                                 {"avx512bw", __builtin_cpu_supports("avx512bw")},
                                 {"avx512vl", __builtin_cpu_supports("avx512vl")},
                                 {"avx512dq", __builtin_cpu_supports("avx512dq")}});
  }
  if (cap == IsaCap::kAvx512CoreVnni) needed.emplace_back("avx512_vnni", __builtin_cpu_supports("avx512vnni"));
  std::vector<std::string> lacked;
  for (const auto& [flag, present] : needed) {
    if (!present) lacked.emplace_back(flag);
  }
  return lacked;
}

#else
std::vector<std::string> cpu_lacks(IsaCap cap) {
  if (cap == IsaCap::kScalar || cap == IsaCap::kAll) return {};
  return {"x86-64"};
}
bool cpu_has_avx512_vnni() { return false; }
bool cpu_has_int8_vnni() { return false; }
bool cpu_has_avx2() { return false; }
bool cpu_has_avx2_fma() { return false; }
bool cpu_has_avx512() { return false; }
bool cpu_has_avx_vnni() { return false; }
#endif

std::string cpu_paths() {
  std::string out;
  const auto add = [&out](bool has, const char* name) {
    if (has) out += (out.empty() ? "" : ", ") + std::string(name);
  };
  add(cpu_has_avx2_fma(), "avx2");
  add(cpu_has_avx_vnni(), "avx_vnni");
  add(cpu_has_avx512(), "avx512");
  add(cpu_has_avx512_vnni(), "avx512_vnni");
  return out.empty() ? "scalar" : out;
}

}  // namespace shrink::core
