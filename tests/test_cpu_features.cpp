// The CPU-path cap: names as oneDNN spells them, errors that name the variable, kernels within it.
#include <gtest/gtest.h>

#include <cstdlib>

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
