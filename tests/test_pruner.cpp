// L1Pruner on real modules: selection, masks that hold through training, schedules, resume, finalize.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "compress/prune/l1_pruner.h"
#include "compress/prune/mask_keeper.h"
#include "compress/prune/sensitivity.h"
#include "core/error.h"
#include "core/format.h"
#include "data/synthetic.h"
#include "helpers.h"
#include "io/pth_format.h"
#include "io/state_dict.h"
#include "models/registry.h"
#include "train/trainer.h"
#include "training_fixtures.h"

using namespace shrink;
using namespace shrink::compress::prune;
using namespace shrink::testing;

namespace {

train::TrainerOptions finetune(int64_t epochs) {
  return train::TrainerOptions()
      .epochs(epochs)
      .batch_size(32)
      .optimizer(train::OptimizerOptions().name(train::OptimizerKind::kSgd).lr(0.05).momentum(0.9).weight_decay(1e-3))
      .seed(2)
      .progress(false);
}

double zero_fraction(const torch::Tensor& t) {
  return 1.0 - static_cast<double>(t.count_nonzero().item<int64_t>()) / t.numel();
}

std::vector<std::string> names_of(const io::StateDict& sd) {
  std::vector<std::string> out;
  for (const auto& e : sd) out.push_back(e.name);
  return out;
}

}  // namespace

TEST(L1Pruner, DefaultSelectionIsWeightsOfRankTwoOrMore) {
  torch::manual_seed(1);
  auto m = models::build_model(models::ConvNetOptions().channels({4}).fc({8}), {{1, 8, 8}, 3});
  L1Pruner p(m.ptr(), PruneOptions().sparsity(0.5));
  EXPECT_EQ(p.selected(),
            (std::vector<std::string>{"features.0.weight", "classifier.0.weight", "classifier.2.weight"}));
}

TEST(L1Pruner, SelectorMatchingNothingListsTheParameterNames) {
  auto m = tiny_mlp(1);
  try {
    L1Pruner(m.ptr(), PruneOptions().include({"fc1\\.weight"}));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("include 'fc1\\.weight' matches no parameter"), std::string::npos) << what;
    EXPECT_NE(what.find("classifier.0.weight [32, 64]"), std::string::npos) << what;
  }
}

TEST(L1Pruner, IncludeExcludeAndOverridesPickTensorsAndTargets) {
  auto m = tiny_mlp(1);
  L1Pruner p(m.ptr(), PruneOptions()
                          .sparsity(0.5)
                          .include({"weight$"})
                          .exclude({"classifier\\.4"})
                          .overrides({{"classifier\\.2", 0.25}}));
  p.prune_to_fraction_of_target(1.0);
  EXPECT_EQ(p.selected(), (std::vector<std::string>{"classifier.0.weight", "classifier.2.weight"}));
  const auto params = m->named_parameters();
  EXPECT_DOUBLE_EQ(zero_fraction(params["classifier.0.weight"]), 0.5);
  EXPECT_DOUBLE_EQ(zero_fraction(params["classifier.2.weight"]), 0.25);
  EXPECT_DOUBLE_EQ(zero_fraction(params["classifier.4.weight"]), 0.0);
}

TEST(L1Pruner, MasksAreBuffersInTheStateDict) {
  auto m = tiny_mlp(1);
  L1Pruner p(m.ptr(), PruneOptions().sparsity(0.5));
  const auto names = names_of(io::state_dict(*m));
  EXPECT_NE(std::find(names.begin(), names.end(), "classifier.0.weight_mask"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "classifier.4.weight_mask"), names.end());
}

TEST(L1Pruner, PrunedWeightsStayExactlyZeroThroughMomentumAndWeightDecay) {
  auto m = tiny_mlp(1);
  auto p = std::make_shared<L1Pruner>(m.ptr(), PruneOptions().sparsity(0.7));
  p->prune_to_fraction_of_target(1.0);
  const auto mask_before = m->named_buffers()["classifier.0.weight_mask"].clone();
  train::Trainer t(m, finetune(2));
  t.add_callback(p);
  t.fit(tiny_data(512));
  const auto w = m->named_parameters()["classifier.0.weight"];
  EXPECT_TRUE(torch::equal(m->named_buffers()["classifier.0.weight_mask"], mask_before));
  EXPECT_EQ(w.masked_select(mask_before.eq(0)).abs().max().item<float>(), 0.0f);
  EXPECT_GT(w.masked_select(mask_before.eq(1)).abs().min().item<float>(), 0.0f);
}

TEST(MaskKeeper, AModelPrunedBeforeStaysPrunedThroughLaterTraining) {
  auto m = tiny_mlp(1);
  {
    L1Pruner p(m.ptr(), PruneOptions().sparsity(0.7));
    p.prune_to_fraction_of_target(1.0);
    p.finalize();  // the pruner is gone, as after a prune stage
  }
  const auto mask = m->named_buffers()["classifier.0.weight_mask"].clone();
  auto keeper = std::make_shared<MaskKeeper>(*m);
  EXPECT_TRUE(keeper->any());
  EXPECT_EQ(keeper->names().front(), "classifier.0.weight");
  train::Trainer t(m, finetune(2));
  t.add_callback(keeper);
  t.fit(tiny_data(512));
  const auto w = m->named_parameters()["classifier.0.weight"];
  EXPECT_EQ(w.masked_select(mask.eq(0)).abs().max().item<float>(), 0.0f);
  EXPECT_GT(w.masked_select(mask.eq(1)).abs().min().item<float>(), 0.0f);
}

TEST(MaskKeeper, AModelWithoutMasksHasNothingToKeep) {
  auto m = tiny_mlp(1);
  EXPECT_FALSE(MaskKeeper(*m).any());
}

TEST(L1Pruner, AgpFollowsTheCubicSchedule) {
  auto m = tiny_mlp(1);
  L1Pruner p(m.ptr(), PruneOptions().sparsity(0.8).schedule(PruneScheduleOptions()
                                                                .kind(shrink::compress::prune::PruneScheduleKind::kAgp)
                                                                .start_epoch(1)
                                                                .end_epoch(3)
                                                                .frequency(5)));
  // 10 steps per epoch: updates at steps 10, 15, ..., 30.
  EXPECT_LT(p.schedule_fraction(9, 10), 0);
  EXPECT_DOUBLE_EQ(p.schedule_fraction(10, 10), 0.0);
  EXPECT_LT(p.schedule_fraction(11, 10), 0);
  EXPECT_DOUBLE_EQ(p.schedule_fraction(20, 10), 0.5);
  EXPECT_DOUBLE_EQ(p.schedule_fraction(30, 10), 1.0);
  EXPECT_LT(p.schedule_fraction(35, 10), 0);
  p.step(20, 10);  // s = 0.8 + (0 - 0.8)(1 - 0.5)^3 = 0.7
  EXPECT_NEAR(zero_fraction(m->named_parameters()["classifier.0.weight"]), 0.7, 1e-3);
}

TEST(L1Pruner, IterativeRemovesAnEqualShareOfWhatIsLeftEachRound) {
  auto m = tiny_mlp(1);
  L1Pruner p(m.ptr(),
             PruneOptions().sparsity(0.75).schedule(PruneScheduleOptions()
                                                        .kind(shrink::compress::prune::PruneScheduleKind::kIterative)
                                                        .start_epoch(0)
                                                        .end_epoch(2)
                                                        .rounds(2)));
  EXPECT_DOUBLE_EQ(p.schedule_fraction(0, 10), 0.5);
  EXPECT_DOUBLE_EQ(p.schedule_fraction(10, 10), 1.0);
  EXPECT_LT(p.schedule_fraction(5, 10), 0);
  p.step(0, 10);  // 1 - (1 - 0.75)^(1/2) = 0.5
  EXPECT_NEAR(zero_fraction(m->named_parameters()["classifier.0.weight"]), 0.5, 1e-3);
  p.step(10, 10);
  EXPECT_NEAR(zero_fraction(m->named_parameters()["classifier.0.weight"]), 0.75, 1e-3);
}

TEST(L1Pruner, GlobalScopeReachesTheTargetOverAllSelectedTensors) {
  auto m = tiny_mlp(1);
  L1Pruner p(m.ptr(), PruneOptions().sparsity(0.6).scope(shrink::compress::prune::PruneScope::kGlobal));
  p.prune_to_fraction_of_target(1.0);
  EXPECT_NEAR(p.sparsity(), 0.6, 1e-3);
  // One threshold across tensors of different scales: the layers end at different sparsities,
  // where layer scope would give each 0.6.
  double lowest = 1, highest = 0;
  for (const auto& l : p.layers()) lowest = std::min(lowest, l.sparsity), highest = std::max(highest, l.sparsity);
  EXPECT_GT(highest - lowest, 0.05);
}

TEST(L1Pruner, KilledAndResumedPruningRunEndsWithTheSameMasksAndWeights) {
  const auto dir = scratch_dir("pruner_resume");
  const auto options = PruneOptions()
                           .sparsity(0.8)
                           .scope(shrink::compress::prune::PruneScope::kGlobal)
                           .schedule(PruneScheduleOptions()
                                         .kind(shrink::compress::prune::PruneScheduleKind::kAgp)
                                         .start_epoch(0)
                                         .end_epoch(3)
                                         .frequency(4));
  const auto train_data = tiny_data(512);
  auto run = [&](models::Classifier m, const std::string& ckpt, bool resume, int64_t kill_epoch) {
    auto p = std::make_shared<L1Pruner>(m.ptr(), options);
    train::Trainer t(m, finetune(4).checkpoint_path(ckpt).resume(resume));
    t.add_callback(p);
    struct Killer : train::TrainerCallback {
      int64_t at;
      void on_step_begin(train::Trainer&, const train::StepInfo& s) override {
        if (s.epoch == at) throw std::runtime_error("killed");
      }
    };
    if (kill_epoch >= 0) {
      auto k = std::make_shared<Killer>();
      k->at = kill_epoch;
      t.add_callback(k);
    }
    t.fit(train_data);
  };
  auto straight = tiny_mlp(5);
  run(straight, (dir / "a.pt").string(), false, -1);
  auto first = tiny_mlp(5);
  EXPECT_THROW(run(first, (dir / "b.pt").string(), false, 2), std::runtime_error);
  auto resumed = tiny_mlp(77);  // a new process: everything comes from the checkpoint
  run(resumed, (dir / "b.pt").string(), true, -1);
  const auto a = io::state_dict(*straight), b = io::state_dict(*resumed);
  ASSERT_EQ(names_of(a), names_of(b));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].tensor, b[i].tensor)) << a[i].name;
}

TEST(L1Pruner, FinalizeFoldsMasksAndStopsEnforcingThem) {
  auto m = tiny_mlp(1);
  L1Pruner p(m.ptr(), PruneOptions().sparsity(0.5));
  p.prune_to_fraction_of_target(1.0);
  p.finalize();
  auto w = m->named_parameters()["classifier.0.weight"];
  EXPECT_DOUBLE_EQ(zero_fraction(w), 0.5);
  const auto pruned = m->named_buffers()["classifier.0.weight_mask"].eq(0);
  {
    torch::NoGradGuard no_grad;
    w.masked_fill_(pruned, 1.0f);
  }
  p.apply_masks();
  EXPECT_DOUBLE_EQ(zero_fraction(w), 0.0);
}

TEST(L1Pruner, PrunedStateLoadsIntoAFreshModel) {
  auto m = tiny_mlp(1);
  L1Pruner p(m.ptr(), PruneOptions().sparsity(0.5));
  p.prune_to_fraction_of_target(1.0);
  auto fresh = tiny_mlp(2);
  std::vector<std::string> names;
  for (const auto& e : io::state_dict(*m)) names.push_back(e.name);
  ensure_mask_buffers(*fresh, names);
  io::load_state_dict(*fresh, io::state_dict(*m), "test");
  EXPECT_TRUE(
      torch::equal(fresh->named_buffers()["classifier.0.weight_mask"], m->named_buffers()["classifier.0.weight_mask"]));
}

TEST(L1Pruner, BadOptionsNameTheValue) {
  auto m = tiny_mlp(1);
  try {
    L1Pruner(m.ptr(), PruneOptions().sparsity(1.0));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "prune: sparsity: expected a number in [0, 1), got 1");
  }
}

TEST(Sensitivity, AccuracyDropsAsALayerIsPrunedHarder) {
  auto m = tiny_mlp(1);
  train::Trainer(m, finetune(3)).fit(tiny_data(512));
  const auto r = analyze_sensitivity(
      *m, [&](const at::Tensor& x) { return m->forward(x); }, tiny_data(256, 1),
      PruneOptions().include({"classifier\\.0\\.weight"}), {0.1, 0.99}, false);
  ASSERT_EQ(r.points.size(), 2u);
  EXPECT_GT(r.points[0].accuracy, r.points[1].accuracy);
  EXPECT_GT(r.baseline_accuracy, 0.8);
  // Weights are restored after the sweep.
  EXPECT_DOUBLE_EQ(train::evaluate(
                       *m, [&](const at::Tensor& x) { return m->forward(x); }, tiny_data(256, 1))
                       .accuracy,
                   r.baseline_accuracy);
}

TEST(Sensitivity, ChannelsMaskEachLayersWeakestFiltersAloneAndRestoreThem) {
  auto m = tiny_mlp(1);
  train::Trainer(m, finetune(3)).fit(tiny_data(512));
  const auto before = io::state_dict(*m);
  const auto forward = [&](const at::Tensor& x) { return m->forward(x); };
  const auto r = analyze_sensitivity(*m, forward, tiny_data(256, 1),
                                     PruneOptions().structure(PruneStructure::kChannels), {0.0, 0.5, 0.97}, false);
  EXPECT_EQ(r.tensors, (std::vector<std::string>{"classifier.0", "classifier.2"}));
  ASSERT_EQ(r.points.size(), 6u);
  EXPECT_DOUBLE_EQ(r.points[0].accuracy, r.baseline_accuracy);
  EXPECT_GT(r.points[0].accuracy, r.points[2].accuracy);
  const auto after = io::state_dict(*m);
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_TRUE(torch::equal(before[i].tensor, after[i].tensor)) << before[i].name;
}

TEST(L1PrunerNm, TwoOfFourKeepsTwoOfEveryFourInputsThroughTraining) {
  auto m = tiny_mlp(3);
  auto p = std::make_shared<L1Pruner>(m.ptr(), PruneOptions().structure(PruneStructure::kNM).m(4).sparsity(0.5));
  p->prune_to_fraction_of_target(1.0);
  train::Trainer t(m, finetune(1));
  t.add_callback(p);
  t.fit(tiny_data(256));
  for (const auto& name : p->selected()) {
    const auto w = m->named_parameters()[name];
    EXPECT_TRUE(torch::equal(w.ne(0).reshape({-1, 4}).sum(1), torch::full({w.numel() / 4}, 2, torch::kLong))) << name;
  }
  EXPECT_NEAR(p->sparsity(), 0.5, 1e-12);
}

TEST(L1PrunerNm, TensorsWhoseInputsDoNotGroupByMStayDenseAndAreNamed) {
  torch::manual_seed(4);
  auto m = models::build_model(models::MlpOptions().hidden({30, 16}), {{1, 8, 8}, 4});  // 30 inputs: no 4s
  L1Pruner p(m.ptr(), PruneOptions().structure(PruneStructure::kNM).m(4).sparsity(0.5));
  ASSERT_EQ(p.skipped_layers().size(), 1u);
  EXPECT_EQ(p.skipped_layers()[0].layer, "classifier.2.weight");
  EXPECT_EQ(p.skipped_layers()[0].reason, "its 30 inputs are not a multiple of m = 4");
  EXPECT_EQ(std::find(p.selected().begin(), p.selected().end(), "classifier.2.weight"), p.selected().end());
}

TEST(L1PrunerNm, ASparsityThatIsNoWholeShareOfEachGroupIsRefused) {
  auto m = tiny_mlp(1);
  try {
    L1Pruner(m.ptr(), PruneOptions().structure(PruneStructure::kNM).m(4).sparsity(0.6));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(std::string(e.what()).find("sparsity × m must be a whole number above 0, got sparsity 0.6 (2:4 is m: "
                                           "4, sparsity: 0.5)") != std::string::npos)
        << e.what();
  }
}

TEST(L1PrunerNm, AnIterativeScheduleRaisesTheZerosPerGroupAndKeepsThoseChosen) {
  auto m = tiny_mlp(5);
  L1Pruner p(m.ptr(), PruneOptions().structure(PruneStructure::kNM).m(4).sparsity(0.75));
  p.prune_to_fraction_of_target(0.4);  // 0.3 of each group of 4: one zero
  const auto first = m->named_buffers()["classifier.0.weight_mask"].clone();
  EXPECT_TRUE(torch::equal(first.reshape({-1, 4}).sum(1), torch::full({first.numel() / 4}, 3.0f)));
  p.prune_to_fraction_of_target(1.0);
  const auto last = m->named_buffers()["classifier.0.weight_mask"];
  EXPECT_TRUE(torch::equal(last.reshape({-1, 4}).sum(1), torch::full({last.numel() / 4}, 1.0f)));
  EXPECT_EQ(last.masked_select(first.eq(0)).sum().item<float>(), 0.0f);
}

TEST(L1PrunerNm, ARecipesTwoOfFourModelKeepsItsPatternInEveryFileItWrites) {
  const auto dir = scratch_dir("nm_recipe");
  write_file(dir / "recipe.yaml",
             synthetic_recipe(2,
                              "  - prune:\n      model: small\n      structure: n:m\n      m: 4\n      sparsity: 0.5\n"
                              "      finetune: {epochs: 1, batch_size: 32, optimizer: {name: sgd, lr: 0.02}}\n"));
  const auto run =
      run_shrink("run --no-progress --out " + (dir / "run").string() + " " + (dir / "recipe.yaml").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto stage = read_json(dir / "run" / "report.json")["stages"][1];
  EXPECT_EQ(stage["pruning"]["pattern"], "2:4") << stage["pruning"].dump();
  EXPECT_NEAR(stage["pruning"]["sparsity"].get<double>(), 0.5, 1e-12);
  for (const auto& format : {"pt", "h5"}) {
    const auto file = dir / "run" / stage["artifacts"][format].get<std::string>();
    const auto eval = run_shrink("eval " + file.string());
    ASSERT_EQ(eval.exit_code, 0) << eval.output;
    EXPECT_NE(eval.output.find(core::format_double("accuracy %.4f", stage["metrics"]["accuracy"].get<double>())),
              std::string::npos)
        << format << ": " << eval.output;
  }
  // The weights as PyTorch reads them: two of every four inputs of each layer.
  for (const auto& e : io::read_pth(dir / "run" / stage["artifacts"]["pth"].get<std::string>())) {
    if (e.name.size() < 7 || e.name.compare(e.name.size() - 7, 7, ".weight") != 0) continue;
    EXPECT_TRUE(
        torch::equal(e.tensor.ne(0).reshape({-1, 4}).sum(1), torch::full({e.tensor.numel() / 4}, 2, torch::kLong)))
        << e.name;
  }
}
