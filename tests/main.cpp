// The test program's entry: on the BLAS kernels the CLI runs on (core/blas_kernels.h), then GoogleTest.
#include <gtest/gtest.h>

#include "core/blas_kernels.h"

int main(int argc, char** argv) {
  shrink::core::restart_on_better_blas_kernels(argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
