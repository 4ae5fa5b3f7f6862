// The test program's entry: a capped CPU-path run the CPU cannot take is skipped, then the BLAS
// kernels the CLI runs on (core/blas_kernels.h), then GoogleTest, then the scratch files go.
#include <gtest/gtest.h>

#include <cstdlib>
#include <exception>
#include <iostream>

#include "core/blas_kernels.h"
#include "core/cpu_features.h"
#include "core/format.h"
#include "helpers.h"

namespace {

// ctest's exit code for a skipped run (SKIP_RETURN_CODE in tests/CMakeLists.txt).
constexpr int kSkipped = 77;

// ctest's cpu_path.* runs name their path in SHRINK_TEST_CPU_PATH (and cap oneDNN, ATen and shrink
// to it). On a CPU without that path the run would repeat a narrower one, and ATen, which takes
// ATEN_CPU_CAPABILITY without checking the CPU, would die on an illegal instruction.
bool cpu_lacks_the_tested_path() {
  const char* path = std::getenv("SHRINK_TEST_CPU_PATH");
  if (!path || !*path) return false;
  const auto lacked = shrink::core::cpu_lacks(shrink::core::parse_isa_cap(path, "SHRINK_TEST_CPU_PATH"));
  if (lacked.empty()) return false;
  std::cout << "skipped: this CPU lacks " << shrink::core::join(lacked) << ", which the " << path
            << " path needs (this CPU: " << shrink::core::cpu_paths() << ")\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (cpu_lacks_the_tested_path()) return kSkipped;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  shrink::core::restart_on_better_blas_kernels(argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int failed = RUN_ALL_TESTS();
  shrink::testing::finish_scratch(failed == 0);
  return failed;
}
