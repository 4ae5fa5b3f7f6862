// The CPU-path cap: names as oneDNN spells them, errors that name the variable, kernels within it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "core/cpu_features.h"
#include "core/error.h"
#include "helpers.h"

using namespace shrink;
using namespace shrink::testing;
using core::IsaCap;

TEST(CpuFeatures, ParsesOneDnnNamesOfCpuPathsInAnyCase) {
  EXPECT_EQ(core::parse_isa_cap("AVX2", "X"), IsaCap::kAvx2);
  EXPECT_EQ(core::parse_isa_cap("avx2_vnni", "X"), IsaCap::kAvx2Vnni);
  EXPECT_EQ(core::parse_isa_cap("AVX512_CORE", "X"), IsaCap::kAvx512Core);
  EXPECT_EQ(core::parse_isa_cap("AVX512_CORE_VNNI", "X"), IsaCap::kAvx512CoreVnni);
  EXPECT_EQ(core::parse_isa_cap("SSE41", "X"), IsaCap::kScalar);
  EXPECT_EQ(core::parse_isa_cap("avx512_core_amx", "X"), IsaCap::kAll);
}

TEST(CpuFeatures, RejectsAnUnknownCapNamingTheVariableAndTheChoices) {
  try {
    core::parse_isa_cap("avx9000", "SHRINK_MAX_CPU_ISA");
    FAIL() << "no error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "SHRINK_MAX_CPU_ISA=avx9000")) << e.what();
    EXPECT_TRUE(contains(e.what(), "avx512_core_vnni")) << e.what();
  }
}

// The cpu_path.* ctest runs set the cap; the kernels' feature answers must stay inside it there.
TEST(CpuFeatures, KernelPathsStayWithinTheCapOfTheEnvironment) {
  const char* cap = std::getenv("SHRINK_MAX_CPU_ISA");
  const IsaCap expected = cap && *cap ? core::parse_isa_cap(cap, "SHRINK_MAX_CPU_ISA") : core::isa_cap();
  ASSERT_EQ(core::isa_cap(), expected);
  if (expected < IsaCap::kAvx2) {
    EXPECT_FALSE(core::cpu_has_avx2());
  }
  if (expected < IsaCap::kAvx512Core) {
    EXPECT_FALSE(core::cpu_has_avx512());
  }
  if (expected != IsaCap::kAvx2Vnni && expected != IsaCap::kAll) {
    EXPECT_FALSE(core::cpu_has_avx_vnni());
  }
  if (expected < IsaCap::kAvx2Vnni || expected == IsaCap::kAvx512Core) {
    EXPECT_FALSE(core::cpu_has_int8_vnni());
  }
  EXPECT_FALSE(core::cpu_paths().empty());
}

namespace {

// The flags Linux lists for the first CPU in /proc/cpuinfo (empty when it cannot be read).
std::set<std::string> linux_cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

}  // namespace

// The test program skips a cpu_path.* run by this answer; it is the CPU's own, whatever the cap,
// so it is checked against what the kernel saw, not against shrink's capped detectors.
TEST(CpuFeatures, APathsLackedInstructionSetsAreThoseLinuxDoesNotList) {
  const auto flags = linux_cpu_flags();
  if (flags.empty() || !flags.count("sse2")) GTEST_SKIP() << "no x86 flags in /proc/cpuinfo";
  const std::vector<std::string> named = {"avx2",     "fma",      "avx_vnni", "avx512f",
                                          "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"};
  const auto all = core::cpu_lacks(IsaCap::kAvx512CoreVnni), vnni2 = core::cpu_lacks(IsaCap::kAvx2Vnni);
  for (const auto& flag : named) {
    const auto& lacks = flag == "avx_vnni" ? vnni2 : all;
    EXPECT_EQ(std::count(lacks.begin(), lacks.end(), flag), flags.count(flag) ? 0 : 1) << flag;
  }
}

TEST(CpuFeatures, AWiderPathLacksWhatTheNarrowerOnesLackAndNoPathNamesNothing) {
  EXPECT_TRUE(core::cpu_lacks(IsaCap::kScalar).empty());
  EXPECT_TRUE(core::cpu_lacks(IsaCap::kAll).empty());
  const auto avx2 = core::cpu_lacks(IsaCap::kAvx2), core512 = core::cpu_lacks(IsaCap::kAvx512Core),
             vnni512 = core::cpu_lacks(IsaCap::kAvx512CoreVnni);
  for (const auto& f : avx2) EXPECT_NE(std::find(core512.begin(), core512.end(), f), core512.end()) << f;
  for (const auto& f : core512) EXPECT_NE(std::find(vnni512.begin(), vnni512.end(), f), vnni512.end()) << f;
  // AVX-VNNI belongs to avx2_vnni only: the AVX-512 levels name CPUs without it.
  EXPECT_EQ(std::count(vnni512.begin(), vnni512.end(), "avx_vnni"), 0);
}
