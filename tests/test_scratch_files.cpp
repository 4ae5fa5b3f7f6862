// The test fixtures' scratch folders: fresh for each test, removed after a run that passed
// (tests/check_scratch_files.sh runs the second test below to see a failed run's files kept).
#include <gtest/gtest.h>

#include <filesystem>

#include "helpers.h"

namespace fs = std::filesystem;
using namespace shrink::testing;

TEST(ScratchFiles, AFolderIsEmptyEachTimeItIsAskedForAndLiesUnderTheProcesssRoot) {
  const auto dir = scratch_dir("scratch_fresh");
  write_file(dir / "inner" / "file.txt", "written");
  ASSERT_TRUE(fs::exists(dir / "inner" / "file.txt"));
  EXPECT_TRUE(fs::is_empty(scratch_dir("scratch_fresh")));
  EXPECT_EQ(dir.parent_path(), scratch_root());
}

// Fails on purpose, so it is disabled: only the script asks for it.
TEST(ScratchFiles, DISABLED_FailsWithAFileInItsFolder) {
  write_file(scratch_dir("scratch_kept") / "evidence.txt", "kept");
  FAIL() << "failed on purpose (tests/check_scratch_files.sh)";
}
