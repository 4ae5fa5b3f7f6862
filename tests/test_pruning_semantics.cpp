// Magnitude masks equal PyTorch's torch.nn.utils.prune: counts, choices, ties, layer and global.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "compress/prune/magnitude.h"
#include "helpers.h"
#include "io/pth_format.h"

using namespace shrink;
using namespace shrink::compress::prune;
using namespace shrink::testing;

namespace {

// Fixed tensors with deliberate ties: repeated magnitudes of both signs and exact zeros.
std::vector<torch::Tensor> fixed_tensors() {
  torch::manual_seed(1234);
  auto a = torch::randn({7, 5});
  auto b = torch::tensor({{0.5, -0.5, 0.25, 0.5}, {-0.25, 0.0, 0.0, 0.5}, {0.75, -0.75, 0.25, -0.5}});
  auto c = torch::randint(-3, 4, {4, 3, 2, 2}).to(torch::kFloat);  // many ties among small integers
  auto d = torch::full({11}, 2.0);
  return {a, b.to(torch::kFloat), c, d};
}

void compare_with_pytorch(double amount) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("prune_reference_" + std::to_string(static_cast<int>(amount * 1000)));
  const auto tensors = fixed_tensors();
  io::StateDict in = {{"amount", torch::tensor(amount, torch::kDouble), false}};
  for (size_t i = 0; i < tensors.size(); ++i) in.push_back({"layer." + std::to_string(i), tensors[i], false});
  io::write_pth(dir / "in.pth", in);
  const auto r = run_command("/usr/bin/python3 " + tests_dir() + "/python/prune_reference.py " +
                             (dir / "in.pth").string() + " " + (dir / "out.pth").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::map<std::string, torch::Tensor> ref;
  for (const auto& e : io::read_pth(dir / "out.pth")) ref[e.name] = e.tensor;
  const auto global = global_l1_masks(tensors, amount);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto layer = l1_mask(tensors[i], amount);
    EXPECT_TRUE(torch::equal(layer, ref.at("layer." + std::to_string(i)))) << "layer " << i << " amount " << amount;
    EXPECT_TRUE(torch::equal(global[i], ref.at("global." + std::to_string(i))))
        << "global " << i << " amount " << amount;
  }
}

}  // namespace

TEST(PruningSemantics, CountRoundsHalfToEvenLikePython) {
  EXPECT_EQ(entries_to_prune(0.5, 5), 2);  // round(2.5) == 2
  EXPECT_EQ(entries_to_prune(0.5, 7), 4);  // round(3.5) == 4
  EXPECT_EQ(entries_to_prune(0.3, 10), 3);
  EXPECT_EQ(entries_to_prune(0.0, 10), 0);
}

TEST(PruningSemantics, PrunesTheSmallestMagnitudes) {
  const auto w = torch::tensor({0.3, -0.1, 2.0, -0.05, 0.7, -1.5});
  EXPECT_TRUE(torch::equal(l1_mask(w, 0.5), torch::tensor({0.0, 0.0, 1.0, 0.0, 1.0, 1.0})));
}

TEST(PruningSemantics, AlreadyPrunedEntriesStayPrunedAndCountFirst) {
  const auto w = torch::tensor({0.3, -0.1, 2.0, -0.05, 0.7, -1.5});
  const auto current = torch::tensor({1.0, 1.0, 0.0, 1.0, 1.0, 1.0});  // 2.0 was pruned earlier
  EXPECT_TRUE(torch::equal(l1_mask(w, 0.5), torch::tensor({0.0, 0.0, 1.0, 0.0, 1.0, 1.0})));
  EXPECT_TRUE(torch::equal(l1_mask(w, 0.5, current), torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 1.0})));
}

TEST(PruningSemantics, LayerAndGlobalMasksEqualPyTorchAtTenPercent) { compare_with_pytorch(0.1); }
TEST(PruningSemantics, LayerAndGlobalMasksEqualPyTorchAtHalf) { compare_with_pytorch(0.5); }
TEST(PruningSemantics, LayerAndGlobalMasksEqualPyTorchAtNinetyPercent) { compare_with_pytorch(0.9); }
TEST(PruningSemantics, LayerAndGlobalMasksEqualPyTorchOnATieRoundingBoundary) { compare_with_pytorch(0.25); }

TEST(PruningSemantics, GlobalUsesOneThresholdAcrossTensors) {
  const auto small = torch::full({4}, 0.1), large = torch::full({4}, 5.0);
  const auto masks = global_l1_masks({small, large}, 0.5);
  EXPECT_EQ(masks[0].sum().item<double>(), 0.0);
  EXPECT_EQ(masks[1].sum().item<double>(), 4.0);
}
