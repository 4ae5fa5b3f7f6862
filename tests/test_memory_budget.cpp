// The memory budget: sizes parsed, every estimate refused past the budget before it is allocated.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <fstream>

#include "core/error.h"
#include "core/format.h"
#include "core/memory_budget.h"
#include "data/idx_reader.h"
#include "data/source.h"
#include "helpers.h"
#include "models/registry.h"
#include "recipe/recipe.h"
#include "train/metrics.h"

namespace fs = std::filesystem;
using namespace shrink;
using namespace shrink::testing;

namespace {

// Each test sets the budget it needs; the next starts from the default.
class MemoryBudget : public ::testing::Test {
 protected:
  void TearDown() override { core::set_memory_budget_bytes(0); }
};

std::string recipe_with_model(const std::string& model) {
  return "name: budget\nseed: 1\ndevice: cpu\n"
         "data:\n  format: synthetic\n  synthetic: {samples: 64, test_samples: 32, classes: 4, shape: [16]}\n"
         "models:\n  m: " +
         model + "\nstages:\n  - train: {model: m, epochs: 1, batch_size: 32}\n";
}

std::string load_error(const fs::path& recipe) {
  try {
    recipe::load_recipe(recipe);
  } catch (const core::RecipeError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a RecipeError";
  return "";
}

// Resident memory now, in bytes (Linux's /proc/self/statm counts pages).
uint64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

TEST_F(MemoryBudget, ByteSizesTakeBinaryUnits) {
  EXPECT_EQ(core::parse_byte_size("4096", "x"), 4096u);
  EXPECT_EQ(core::parse_byte_size("512M", "x"), 512u << 20);
  EXPECT_EQ(core::parse_byte_size("8G", "x"), uint64_t{8} << 30);
  EXPECT_EQ(core::parse_byte_size("1.5GiB", "x"), uint64_t{3} << 29);
  EXPECT_EQ(core::parse_byte_size("2kB", "x"), 2048u);
}

TEST_F(MemoryBudget, AMalformedSizeIsAUsageErrorNamingTheOption) {
  for (const std::string bad : {"", "12X", "-1G", "G", "nan", "1e30"}) {
    try {
      core::parse_byte_size(bad, "--max-memory");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const core::UsageError& e) {
      EXPECT_TRUE(contains(e.what(), "--max-memory expects a size such as 8G")) << e.what();
    }
  }
}

TEST_F(MemoryBudget, TheDefaultIsAShareOfPhysicalMemoryAndASetBudgetReplacesIt) {
  EXPECT_EQ(core::memory_budget_bytes(),
            static_cast<uint64_t>(static_cast<double>(core::physical_memory_bytes()) * core::kDefaultMemoryShare));
  core::set_memory_budget_bytes(1 << 20);
  EXPECT_EQ(core::memory_budget_bytes(), 1u << 20);
  EXPECT_TRUE(contains(core::over_budget(2 << 20), "more than the memory budget of 1.00 MiB (set by --max-memory)"))
      << core::over_budget(2 << 20);
  EXPECT_EQ(core::over_budget(1 << 20), "");
}

TEST_F(MemoryBudget, AModelPastTheBudgetIsARecipeErrorAtItsKeyNamingTheEstimate) {
  const auto path = write_recipe("budget_huge_model", recipe_with_model("{arch: mlp, hidden: [100000000, 100000000]}"));
  const auto what = load_error(path);
  EXPECT_TRUE(contains(what, "models.m: the model's ")) << what;
  EXPECT_TRUE(contains(what, "activations in training at batch 32: needs ")) << what;
  EXPECT_TRUE(contains(what, "more than the memory budget")) << what;
}

TEST_F(MemoryBudget, ValidationBuildsNoModelWeights) {
  // 4 x 4096 x 4096 floats: 256 MiB of weights if they were allocated.
  const auto path = write_recipe("budget_no_build", recipe_with_model("{arch: mlp, hidden: [4096, 4096, 4096, 4096]}"));
  const uint64_t before = resident_bytes();
  const auto r = recipe::load_recipe(path);
  EXPECT_EQ(r.models.size(), 1u);
  EXPECT_LT(resident_bytes(), before + (64u << 20));
}

TEST_F(MemoryBudget, TheEstimateGrowsWithTheTrainingBatch) {
  core::set_memory_budget_bytes(40u << 20);                       // 40 MiB
  const std::string model = "{arch: mlp, hidden: [1024, 1024]}";  // ~4.3 MiB of weights
  EXPECT_NO_THROW(recipe::load_recipe(write_recipe("budget_small_batch", recipe_with_model(model))));
  auto big = recipe_with_model(model);
  big.replace(big.find("batch_size: 32"), 14, "batch_size: 8192");
  EXPECT_TRUE(contains(load_error(write_recipe("budget_big_batch", big)), "in training at batch 8192"));
}

TEST_F(MemoryBudget, AStudentsTrainingCountsItsTeacherBesideIt) {
  core::set_memory_budget_bytes(40u << 20);  // 40 MiB
  // The teacher alone (~17 MiB of weights, evaluated at 1,024) and the 688-byte student alone both
  // fit; distilling at batch 4096 runs the teacher on every batch beside the student.
  const auto recipe = [](int batch) {
    return "name: budget\nseed: 1\n"
           "data:\n  format: synthetic\n  synthetic: {samples: 64, test_samples: 32, classes: 4, shape: [16]}\n"
           "models:\n  t: {arch: mlp, hidden: [2048, 2048]}\n  s: {arch: mlp, hidden: [8]}\n"
           "stages:\n  - distill: {model: s, teacher: t, epochs: 1, batch_size: " +
           std::to_string(batch) + "}\n";
  };
  EXPECT_NO_THROW(recipe::load_recipe(write_recipe("budget_teacher_small_batch", recipe(32))));
  const auto what = load_error(write_recipe("budget_teacher_big_batch", recipe(4096)));
  EXPECT_TRUE(contains(what,
                       "models.s: the model's 688 B of weights and its activations in training at batch 4096 "
                       "with t's weights and activations beside it: needs "))
      << what;
}

// A model that is only evaluated (a one-shot prune) counts its inference plan's packed copy of its
// weights, which `report: {fast_path: false}` does without.
TEST_F(MemoryBudget, AnEvaluatedModelCountsItsInferencePlansCopyOfItsWeights) {
  core::set_memory_budget_bytes(30u << 20);  // 30 MiB
  const auto recipe = [](const std::string& report) {
    return "name: budget\nseed: 1\n"
           "data:\n  format: synthetic\n  synthetic: {samples: 64, test_samples: 32, classes: 4, shape: [16]}\n"
           "models:\n  m: {arch: mlp, hidden: [2048, 2048]}\n" +  // ~16.2 MiB of weights
           report +
           "stages:\n  - prune: {model: m, sparsity: 0.5}\n";
  };
  const auto what = load_error(write_recipe("budget_plan_copy", recipe("")));
  EXPECT_TRUE(
      contains(what, "in evaluation at batch 128, with its inference plan's 16.39 MiB copy of the weights: needs "))
      << what;
  EXPECT_NO_THROW(recipe::load_recipe(write_recipe("budget_plan_off", recipe("report: {fast_path: false}\n"))));
}

TEST_F(MemoryBudget, AModelWhoseForwardFailsOnTheDataIsARecipeErrorAtItsKey) {
  // A user architecture that ignores the data's shape: 5 input features for 16-feature samples.
  if (!models::ArchitectureRegistry::instance().find("budget-wrong-width-test")) {
    models::register_architecture("budget-wrong-width-test",
                                  [](const models::ModelInput&) { return torch::nn::Linear(5, 4); });
  }
  const auto what =
      load_error(write_recipe("budget_forward_fails", recipe_with_model("{arch: budget-wrong-width-test}")));
  EXPECT_TRUE(contains(what, "models.m: a forward pass on one sample of the data (shape [16]) fails: ")) << what;
}

TEST_F(MemoryBudget, AnArchitectureRefusingItsOptionsIsARecipeErrorAtTheModel) {
  auto text = recipe_with_model("{arch: convnet, channels: [4, 4, 4, 4], fc: [8]}");
  text.replace(text.find("shape: [16]"), 11, "shape: [1, 8, 8]");
  const auto what = load_error(write_recipe("budget_pooling_to_nothing", text));
  EXPECT_TRUE(contains(what, "models.m: 4 pooling blocks need images of at least 16x16, got 8x8")) << what;
}

TEST_F(MemoryBudget, AConfusionMatrixPastTheBudgetIsRefusedAtTheClassesKey) {
  auto text = recipe_with_model("{arch: mlp, hidden: [8]}");
  text.replace(text.find("classes: 4"), 10, "classes: 100000");
  core::set_memory_budget_bytes(1u << 30);
  const auto what = load_error(write_recipe("budget_confusion", text));
  EXPECT_TRUE(contains(what,
                       "data.synthetic.classes: the evaluation's confusion matrix of 100000 x 100000 classes "
                       "needs 74.51 GiB"))
      << what;
}

TEST_F(MemoryBudget, AConfusionMeterPastTheBudgetThrowsBeforeAllocating) {
  core::set_memory_budget_bytes(1u << 20);
  EXPECT_THROW(train::ConfusionMeter(1000), core::UsageError);  // 8 MB of counts
  EXPECT_NO_THROW(train::ConfusionMeter(100));
}

TEST_F(MemoryBudget, IdxDataPastTheBudgetIsRefusedFromTheHeadersNamingTheFiles) {
  const auto dir = scratch_dir("budget_idx");
  data::write_idx(dir / "x.idx.gz", torch::zeros({1000, 28, 28}, torch::kByte));
  data::write_idx(dir / "y.idx.gz", torch::zeros({1000}, torch::kByte));
  core::set_memory_budget_bytes(1u << 20);  // 1000 images become 3 MiB of floats
  data::SourceOptions o;
  o.format = data::DataFormat::kIdx;
  o.idx_train = data::IdxFiles{dir / "x.idx.gz", dir / "y.idx.gz"};
  o.idx_test = o.idx_train;
  o.class_names = {"a", "b"};
  try {
    data::load_splits(o);
    FAIL() << "expected a UsageError";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), (dir / "x.idx.gz").string() + " and " + (dir / "y.idx.gz").string())) << e.what();
    EXPECT_TRUE(contains(e.what(), "more than the memory budget")) << e.what();
  }
}
