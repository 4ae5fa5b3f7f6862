// Magnitude masks equal PyTorch's torch.nn.utils.prune: counts, choices, ties, layer and global.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "compress/prune/magnitude.h"
#include "core/error.h"
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

TEST(NmSemantics, EveryGroupOfMInputsKeepsItsLargestWeightsInLinearAndConvLayers) {
  torch::manual_seed(21);
  for (const auto& w : {torch::randn({3, 8}), torch::randn({2, 8, 3, 3})}) {
    const auto mask = nm_mask(w, 4, 2);
    // Grouped along the inputs: [rows, in] with in = dim 1, at every kernel position.
    const auto rows = [](const torch::Tensor& t) {
      return t.dim() == 2 ? t : t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)});
    };
    const auto g_mask = rows(mask).reshape({-1, 4});
    const auto g_abs = rows(w.abs()).reshape({-1, 4});
    EXPECT_TRUE(torch::equal(g_mask.sum(1), torch::full({g_mask.size(0)}, 2.0f))) << w.sizes();
    // Every kept magnitude is at least every pruned one of its group.
    const auto kept_min = g_abs.masked_fill(g_mask.eq(0), INFINITY).amin(1);
    const auto pruned_max = g_abs.masked_fill(g_mask.eq(1), -1.0f).amax(1);
    EXPECT_TRUE(kept_min.ge(pruned_max).all().item<bool>()) << w.sizes();
  }
}

TEST(NmSemantics, AlreadyPrunedWeightsAreAGroupsFirstZeros) {
  const auto w = torch::tensor({{0.9f, 0.1f, 0.5f, 0.7f}});
  const auto current = torch::tensor({{0.0f, 1.0f, 1.0f, 1.0f}});  // 0.9 was pruned before
  EXPECT_TRUE(torch::equal(nm_mask(w, 4, 2, current), torch::tensor({{0.0f, 0.0f, 1.0f, 1.0f}})));
}

TEST(NmSemantics, InputsThatAreNoMultipleOfMAreRefusedWithTheReason) {
  EXPECT_EQ(nm_group_problem(torch::zeros({4, 6}), 4), "its 6 inputs are not a multiple of m = 4");
  EXPECT_EQ(nm_group_problem(torch::zeros({4, 8, 3, 3}), 4), "");
  EXPECT_THROW(nm_mask(torch::zeros({4, 6}), 4, 2), core::Error);
}

TEST(NmSemantics, MasksEqualTorchAosWeightNormSparsifierTwoOfFour) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("nm_reference");
  torch::manual_seed(22);
  const std::vector<torch::Tensor> tensors = {torch::randn({5, 16}), torch::randint(-3, 4, {3, 8}).to(torch::kFloat)};
  for (const int64_t zeros : {1, 2, 3}) {
    io::StateDict in = {{"m", torch::tensor(int64_t{4}), false}, {"zeros", torch::tensor(int64_t{zeros}), false}};
    for (size_t i = 0; i < tensors.size(); ++i) in.push_back({"layer." + std::to_string(i), tensors[i], false});
    io::write_pth(dir / "in.pth", in);
    const auto r = run_command("/usr/bin/python3 -W ignore " + tests_dir() + "/python/nm_reference.py " +
                               (dir / "in.pth").string() + " " + (dir / "out.pth").string() + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::map<std::string, torch::Tensor> ref;
    for (const auto& e : io::read_pth(dir / "out.pth")) ref[e.name] = e.tensor;
    // Distinct magnitudes: the choice is the same; tied ones (the integers): the count per group.
    EXPECT_TRUE(torch::equal(nm_mask(tensors[0], 4, zeros), ref.at("layer.0"))) << zeros << " zeros";
    EXPECT_TRUE(
        torch::equal(nm_mask(tensors[1], 4, zeros).reshape({-1, 4}).sum(1), ref.at("layer.1").reshape({-1, 4}).sum(1)))
        << zeros << " zeros";
  }
}
