// OpenBLAS's kernels: read through its exported corename, improved by a restart with OPENBLAS_CORETYPE.
#include "core/blas_kernels.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>

#include "core/cpu_features.h"
#include "core/error.h"

namespace shrink::core {

namespace {

// Set in the restarted process so that a library that ignores OPENBLAS_CORETYPE is not restarted
// again and again.
constexpr const char* kRestarted = "SHRINK_OPENBLAS_RESTARTED";

}  // namespace

int openblas_vector_bits(const std::string& core) {
  for (const char* name : {"SkylakeX", "Cooperlake", "SapphireRapids"}) {
    if (core == name) return 512;
  }
  for (const char* name : {"Haswell", "Zen", "Excavator", "Steamroller"}) {
    if (core == name) return 256;
  }
  return 128;
}

std::string openblas_core_to_ask_for(const std::string& loaded, const std::string& for_cpu) {
  if (loaded.empty() || for_cpu.empty() || openblas_vector_bits(loaded) >= openblas_vector_bits(for_cpu)) return "";
  return for_cpu;
}

std::string openblas_core() {
  using CoreName = char* (*)();
  const auto name = reinterpret_cast<CoreName>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!name) return "";
  const char* core = name();
  return core ? core : "";
}

std::string openblas_core_for_this_cpu() {
  if (cpu_has_avx512()) return "SkylakeX";
  if (cpu_has_avx2_fma()) return "Haswell";
  return "";
}

std::string better_openblas_core() {
  if (const char* set = std::getenv("OPENBLAS_CORETYPE"); set) return "";
  if (const char* again = std::getenv(kRestarted); again && *again) return "";
  try {
    return openblas_core_to_ask_for(openblas_core(), openblas_core_for_this_cpu());
  } catch (const Error&) {
    return "";  // a SHRINK_MAX_CPU_ISA shrink does not know: the command reports it, once it runs
  }
}

void restart_on_better_blas_kernels(char** argv) {
  const auto core = better_openblas_core();
  if (core.empty()) return;
  if (::setenv("OPENBLAS_CORETYPE", core.c_str(), 1) != 0 || ::setenv(kRestarted, "1", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // execv returned: it failed (no /proc, say). Carry on with the kernels loaded, as before this
  // existed, and leave both variables to the user and to child processes as they were.
  ::unsetenv("OPENBLAS_CORETYPE");
  ::unsetenv(kRestarted);
}

}  // namespace shrink::core
