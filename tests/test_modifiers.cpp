// Modifiers in the Trainer: call order, loss terms, their own parameters and structure changes,
// checkpointed state and fingerprints, and two pruners with their own windows in one run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "compress/prune/l1_pruner.h"
#include "data/synthetic.h"
#include "helpers.h"
#include "models/registry.h"
#include "train/trainer.h"
#include "training_fixtures.h"

using namespace shrink;
using namespace shrink::testing;
namespace prune = shrink::compress::prune;

namespace {

// Records every call it gets into a shared log, tagged with its name.
struct Recorder : train::Modifier {
  Recorder(std::string tag, std::vector<std::string>* log) : tag(std::move(tag)), log(log) {}
  std::string name() const override { return tag; }
  std::string fingerprint() const override { return tag; }
  void prepare(torch::nn::Module&) override { log->push_back(tag + ":prepare"); }
  void on_train_begin(train::Trainer&) override { log->push_back(tag + ":train_begin"); }
  void on_step_begin(train::Trainer&, const train::StepInfo& s) override {
    if (s.global_step == 0) log->push_back(tag + ":step_begin");
  }
  at::Tensor adjust_loss(const at::Tensor& loss, const train::LossInputs&, const train::StepInfo& s) override {
    if (s.global_step == 0) log->push_back(tag + ":loss");
    return loss;
  }
  void on_step_end(train::Trainer&, const train::StepInfo& s) override {
    if (s.global_step == 0) log->push_back(tag + ":step_end");
  }
  std::string tag;
  std::vector<std::string>* log;
};

// Counts the steps it saw; the count is state of its own, kept in checkpoints.
struct StepCounter : train::Modifier {
  std::string name() const override { return "counter"; }
  std::string fingerprint() const override { return "counter"; }
  void on_step_end(train::Trainer&, const train::StepInfo&) override { ++steps; }
  void save(torch::serialize::OutputArchive& a) const override { a.write("steps", c10::IValue(steps)); }
  void load(torch::serialize::InputArchive& a) override {
    c10::IValue v;
    a.read("steps", v);
    steps = v.toInt();
  }
  int64_t steps = 0;
};

}  // namespace

TEST(Modifiers, AreCalledInTheOrderTheyWereAdded) {
  std::vector<std::string> log;
  auto m = tiny_mlp(1);
  train::Trainer t(m, small_training(1));
  t.add_modifier(std::make_shared<Recorder>("a", &log));
  t.add_modifier(std::make_shared<Recorder>("b", &log));
  t.fit(tiny_data(320));
  EXPECT_EQ(log, (std::vector<std::string>{"a:prepare", "b:prepare", "a:train_begin", "b:train_begin", "a:step_begin",
                                           "b:step_begin", "a:loss", "b:loss", "a:step_end", "b:step_end"}));
}

TEST(Modifiers, AdjustedLossIsWhatTheOptimizerFollows) {
  // A modifier that zeroes the loss leaves no gradient: the weights do not move.
  struct Zero : train::Modifier {
    std::string name() const override { return "zero"; }
    std::string fingerprint() const override { return ""; }
    at::Tensor adjust_loss(const at::Tensor& loss, const train::LossInputs&, const train::StepInfo&) override {
      return loss * 0;
    }
  };
  auto m = tiny_mlp(2);
  const auto before = m->classifier->ptr(0)->named_parameters()["weight"].clone();
  train::Trainer t(m, small_training(1));
  t.add_modifier(std::make_shared<Zero>());
  t.fit(tiny_data(320));
  EXPECT_TRUE(torch::equal(before, m->classifier->ptr(0)->named_parameters()["weight"]));
}

TEST(Modifiers, ExtraParametersAndStructureChangesReachTheOptimizer) {
  // prepare() adds a parameter to the module; extra_parameters() brings one from outside it. The
  // loss pulls both towards 3 alike.
  struct Pull : train::Modifier {
    std::string name() const override { return "pull"; }
    std::string fingerprint() const override { return ""; }
    void prepare(torch::nn::Module& module) override {
      inside = module.register_parameter("pulled", torch::zeros({1}));
    }
    std::vector<at::Tensor> extra_parameters() override { return {outside}; }
    at::Tensor adjust_loss(const at::Tensor& loss, const train::LossInputs&, const train::StepInfo&) override {
      return loss + (inside - 3).pow(2).sum() + (outside - 3).pow(2).sum();
    }
    at::Tensor inside, outside = torch::zeros({1}, torch::requires_grad());
  };
  auto m = tiny_mlp(3);
  auto pull = std::make_shared<Pull>();
  train::Trainer t(m, small_training(2));
  t.add_modifier(pull);
  t.fit(tiny_data(320));
  // Both moved from 0 towards 3, in step with each other: both are in the optimizer.
  EXPECT_GT(pull->inside.item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(pull->inside.item<double>(), pull->outside.item<double>());
}

TEST(Modifiers, CannotBeAddedOnceTheOptimizerExists) {
  auto m = tiny_mlp(4);
  train::Trainer t(m, small_training(1));
  t.optimizer();
  try {
    t.add_modifier(std::make_shared<StepCounter>());
    FAIL() << "expected an Error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("add_modifier(counter): modifiers must be added before the first fit()"),
              std::string::npos)
        << e.what();
  }
}

TEST(Modifiers, TheirStateIsCheckpointedAndRestoredOnResume) {
  const auto dir = scratch_dir("modifier_state");
  const auto data = tiny_data(320);
  auto first = tiny_mlp(5);
  train::Trainer killed(first, small_training(3).checkpoint_path((dir / "c.pt").string()));
  killed.add_modifier(std::make_shared<StepCounter>());
  killed.add_callback(std::make_shared<KillAtEpoch>(2));
  EXPECT_THROW(killed.fit(data), std::runtime_error);

  auto second = tiny_mlp(6);
  auto counter = std::make_shared<StepCounter>();
  train::Trainer resumed(second, small_training(3).checkpoint_path((dir / "c.pt").string()).resume(true));
  resumed.add_modifier(counter);
  const auto r = resumed.fit(data);
  EXPECT_EQ(counter->steps, r.global_step);  // two epochs from the checkpoint, the third run here
  EXPECT_EQ(r.global_step, 3 * (data.size() / 32));
}

TEST(Modifiers, AChangedModifierIsRefusedOnResume) {
  const auto dir = scratch_dir("modifier_changed");
  const auto data = tiny_data(320);
  auto first = tiny_mlp(7);
  train::Trainer killed(first, small_training(2).checkpoint_path((dir / "c.pt").string()));
  killed.add_modifier(std::make_shared<prune::L1Pruner>(first.ptr(), prune::PruneOptions().sparsity(0.5)));
  killed.add_callback(std::make_shared<KillAtEpoch>(1));
  EXPECT_THROW(killed.fit(data), std::runtime_error);

  auto second = tiny_mlp(7);
  train::Trainer resumed(second, small_training(2).checkpoint_path((dir / "c.pt").string()).resume(true));
  resumed.add_modifier(std::make_shared<prune::L1Pruner>(second.ptr(), prune::PruneOptions().sparsity(0.6)));
  try {
    resumed.fit(data);
    FAIL() << "expected a UsageError";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint was written by a different training configuration"),
              std::string::npos)
        << e.what();
  }
}

TEST(Modifiers, TwoPrunersWithTheirOwnWindowsEachReachTheirTarget) {
  auto m = tiny_mlp(8);
  const auto agp = [](double start, double end) {
    return prune::PruneScheduleOptions()
        .kind(shrink::compress::prune::PruneScheduleKind::kAgp)
        .start_epoch(start)
        .end_epoch(end)
        .frequency(2);
  };
  auto first = std::make_shared<prune::L1Pruner>(
      m.ptr(), prune::PruneOptions().sparsity(0.9).include({"classifier\\.0\\.weight"}).schedule(agp(0, 0.9)));
  auto rest = std::make_shared<prune::L1Pruner>(
      m.ptr(), prune::PruneOptions().sparsity(0.5).include({"classifier\\.[24]\\.weight"}).schedule(agp(1, 2.5)));
  // Each checked at the end of its own window: the first is done while the second has not begun.
  struct Probe : train::TrainerCallback {
    std::shared_ptr<prune::L1Pruner> a, b;
    double a_after_epoch0 = -1, b_after_epoch0 = -1;
    void on_epoch_end(train::Trainer&, const train::EpochSummary& s) override {
      if (s.epoch == 0) a_after_epoch0 = a->sparsity(), b_after_epoch0 = b->sparsity();
    }
  };
  auto probe = std::make_shared<Probe>();
  probe->a = first;
  probe->b = rest;
  train::Trainer t(m, small_training(3));
  t.add_modifier(first);
  t.add_modifier(rest);
  t.add_callback(probe);
  t.fit(tiny_data(320));
  EXPECT_NEAR(probe->a_after_epoch0, 0.9, 2e-3);
  EXPECT_EQ(probe->b_after_epoch0, 0.0);
  EXPECT_NEAR(first->sparsity(), 0.9, 2e-3);
  EXPECT_NEAR(rest->sparsity(), 0.5, 2e-3);
  EXPECT_EQ(first->window().end_epoch, 0.9);
  EXPECT_EQ(rest->window().start_epoch, 1.0);
}
