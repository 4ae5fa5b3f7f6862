// Loading a dataset's splits from its options: the test split alone reads only its own files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "data/idx_reader.h"
#include "data/source.h"
#include "helpers.h"

namespace shrink {
namespace {

using testing::contains;
using testing::scratch_dir;

// IDX options whose test files hold `labels.size()` seeded 4 × 4 images; the train files named do
// not exist.
data::SourceOptions test_files_only(const std::string& name, const std::vector<int64_t>& labels) {
  const auto dir = scratch_dir(name);
  torch::manual_seed(3);
  const auto n = static_cast<int64_t>(labels.size());
  data::write_idx(dir / "test-images.idx", torch::randint(0, 256, {n, 4, 4}).to(torch::kByte));
  data::write_idx(dir / "test-labels.idx", torch::tensor(labels).to(torch::kByte));
  data::SourceOptions o;
  o.name = name;
  o.format = data::DataFormat::kIdx;
  o.idx_train = data::IdxFiles{dir / "train-images.idx", dir / "train-labels.idx"};
  o.idx_test = data::IdxFiles{dir / "test-images.idx", dir / "test-labels.idx"};
  o.class_names = {"a", "b", "c"};
  return o;
}

TEST(DataSource, TheTestSplitLoadsWithoutTheTrainSplitsFiles) {
  const auto o = test_files_only("source_test_only", {0, 1, 2, 1, 0});
  const auto test = data::load_test_split(o);
  EXPECT_EQ(test.size(), 5);
  EXPECT_EQ(test.sample_shape(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_TRUE(torch::equal(test.targets, torch::tensor({0, 1, 2, 1, 0}, torch::kLong)));
  try {
    data::load_splits(o);
    FAIL() << "expected the missing train files to be an error";
  } catch (const core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "file not found: " + o.idx_train.images.string())) << e.what();
  }
}

TEST(DataSource, TheTestSplitAloneIsLimitedAsInTheWholeLoad) {
  auto o = test_files_only("source_test_limit", {0, 1, 2, 1, 0});
  o.test_limit = 3;
  const auto test = data::load_test_split(o);
  EXPECT_TRUE(torch::equal(test.targets, torch::tensor({0, 1, 2}, torch::kLong)));
}

TEST(DataSource, TheTestSplitAlonesLabelsAreCheckedAgainstTheClassNames) {
  const auto o = test_files_only("source_test_labels", {0, 5, 1});
  try {
    data::load_test_split(o);
    FAIL() << "expected label 5 of 3 classes to be an error";
  } catch (const core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "dataset 'source_test_labels' test split has label 5 but only 3 class names"))
        << e.what();
  }
}

}  // namespace
}  // namespace shrink
