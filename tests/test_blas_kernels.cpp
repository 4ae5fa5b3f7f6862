// OpenBLAS's kernels: which are asked for, and the CLI running on kernels as wide as the CPU allows.
#include <gtest/gtest.h>

#include "core/blas_kernels.h"
#include "helpers.h"

using namespace shrink;
using namespace shrink::testing;

TEST(BlasKernels, SseKernelsOnAnAvx512CpuAreReplacedBySkylakeX) {
  EXPECT_EQ(core::openblas_core_to_ask_for("Prescott", "SkylakeX"), "SkylakeX");
  EXPECT_EQ(core::openblas_core_to_ask_for("Nehalem", "SkylakeX"), "SkylakeX");
}

TEST(BlasKernels, Avx2KernelsOnAnAvx512CpuAreReplacedBySkylakeX) {
  EXPECT_EQ(core::openblas_core_to_ask_for("Haswell", "SkylakeX"), "SkylakeX");
  EXPECT_EQ(core::openblas_core_to_ask_for("Zen", "SkylakeX"), "SkylakeX");
}

TEST(BlasKernels, AnAvx2CpuGetsHaswellKernelsInsteadOfSseOrAvxOnes) {
  EXPECT_EQ(core::openblas_core_to_ask_for("Prescott", "Haswell"), "Haswell");
  EXPECT_EQ(core::openblas_core_to_ask_for("Sandybridge", "Haswell"), "Haswell");
}

TEST(BlasKernels, KernelsAsWideAsTheCpuAllowsAreKept) {
  EXPECT_EQ(core::openblas_core_to_ask_for("SkylakeX", "SkylakeX"), "");
  EXPECT_EQ(core::openblas_core_to_ask_for("Cooperlake", "SkylakeX"), "");
  EXPECT_EQ(core::openblas_core_to_ask_for("SkylakeX", "Haswell"), "");
  EXPECT_EQ(core::openblas_core_to_ask_for("Zen", "Haswell"), "");
}

TEST(BlasKernels, NothingIsAskedForWithoutOpenBlasOrOnACpuWithoutAvx2) {
  EXPECT_EQ(core::openblas_core_to_ask_for("", "SkylakeX"), "");
  EXPECT_EQ(core::openblas_core_to_ask_for("Prescott", ""), "");
}

namespace {

// The "BLAS: OpenBLAS, NAME kernels" line of `shrink --version` run with `env`; "" without one.
std::string cli_openblas_core(const std::string& env) {
  const auto r = run_command("env -u OPENBLAS_CORETYPE -u SHRINK_OPENBLAS_RESTARTED " + env + " " + shrink_binary() +
                             " --version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string mark = "BLAS: OpenBLAS, ";
  const auto at = r.output.find(mark);
  if (at == std::string::npos) return "";
  const auto start = at + mark.size();
  return r.output.substr(start, r.output.find(" kernels", start) - start);
}

}  // namespace

// CI's VM reports a CPU model OpenBLAS 0.3.21 does not know, and OpenBLAS loads Prescott's SSE3
// kernels there; the CLI restarts itself on the CPU's own.
TEST(BlasKernels, TheCliRunsOnOpenBlasKernelsAsWideAsTheCpuAllows) {
  const auto core = cli_openblas_core("");
  if (core.empty()) GTEST_SKIP() << "LibTorch's BLAS here is not OpenBLAS";
  if (core::openblas_core_for_this_cpu().empty()) GTEST_SKIP() << "this CPU path has no AVX2 + FMA";
  EXPECT_GE(core::openblas_vector_bits(core), core::openblas_vector_bits(core::openblas_core_for_this_cpu()))
      << "OpenBLAS runs " << core << " kernels on a CPU that runs " << core::openblas_core_for_this_cpu();
}

TEST(BlasKernels, TheUsersOwnOpenBlasCoretypeIsLeftAsItIs) {
  if (cli_openblas_core("").empty()) GTEST_SKIP() << "LibTorch's BLAS here is not OpenBLAS";
  EXPECT_EQ(cli_openblas_core("OPENBLAS_CORETYPE=Prescott"), "Prescott");
}

TEST(BlasKernels, AnUnknownCpuCapIsAUsageErrorTheCliReportsNotACrash) {
  const auto r = run_command("env -u OPENBLAS_CORETYPE -u SHRINK_OPENBLAS_RESTARTED SHRINK_MAX_CPU_ISA=avx1024 " +
                             shrink_binary() + " --version");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "error: SHRINK_MAX_CPU_ISA=avx1024 is not a CPU path shrink knows")) << r.output;
}
