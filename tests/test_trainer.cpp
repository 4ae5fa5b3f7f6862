// Trainer: learns, is deterministic under a seed, resumes exactly, stops on NaN, calls its hooks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "core/error.h"
#include "data/synthetic.h"
#include "helpers.h"
#include "models/registry.h"
#include "train/trainer.h"
#include "training_fixtures.h"

using namespace shrink;
using namespace shrink::testing;

namespace {

struct Fixture {
  data::Dataset train, val, test;
};

Fixture synthetic_data() {
  const auto o = data::SyntheticOptions().samples(600).classes(4).shape({1, 8, 8}).noise(1.0).seed(11);
  auto all = data::make_synthetic(o, 0);
  auto split = data::split_validation(all, 0.1, 11);
  return {split.train, split.val, data::make_synthetic(data::SyntheticOptions(o).samples(200), 1)};
}

std::vector<torch::Tensor> weights(models::Classifier& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m->parameters()) out.push_back(p.detach().clone());
  return out;
}

void expect_same_weights(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
}

double test_accuracy(models::Classifier& m, const data::Dataset& test) {
  return train::evaluate(
             *m, [&](const at::Tensor& x) { return m->forward(x); }, test)
      .accuracy;
}

struct Recorder : train::TrainerCallback {
  void on_train_begin(train::Trainer&) override { events.push_back("begin"); }
  void on_step_end(train::Trainer&, const train::StepInfo& s) override {
    ++steps;
    last_global = s.global_step;
  }
  void on_epoch_end(train::Trainer&, const train::EpochSummary& e) override {
    events.push_back("epoch" + std::to_string(e.epoch));
  }
  void on_train_end(train::Trainer&) override { events.push_back("end"); }
  std::vector<std::string> events;
  int64_t steps = 0, last_global = -1;
};

// item() calls in one epoch of training on `samples` synthetic samples (batch 32), with validation.
int64_t item_calls_training_on(int64_t samples, const train::TrainerOptions& options) {
  const auto o = data::SyntheticOptions().samples(samples).classes(4).shape({1, 8, 8}).noise(1.0).seed(11);
  const auto train_set = data::make_synthetic(o, 0);
  const auto val = data::make_synthetic(data::SyntheticOptions(o).samples(64), 1);
  auto m = tiny_mlp(8);
  train::Trainer t(m, options);
  ItemCounter counter;
  t.fit(train_set, val);
  return counter.calls();
}

}  // namespace

TEST(Trainer, LearnsSyntheticData) {
  const auto d = synthetic_data();
  auto m = tiny_mlp(1);
  const double before = test_accuracy(m, d.test);
  train::Trainer(m, small_training(5)).fit(d.train, d.val);
  const double after = test_accuracy(m, d.test);
  EXPECT_GT(after, 0.9);
  EXPECT_GT(after, before + 0.3);
}

TEST(Trainer, SameSeedGivesIdenticalWeightsAndAccuracy) {
  const auto d = synthetic_data();
  auto a = tiny_mlp(2), b = tiny_mlp(2);
  train::Trainer(a, small_training(3)).fit(d.train, d.val);
  train::Trainer(b, small_training(3)).fit(d.train, d.val);
  expect_same_weights(weights(a), weights(b));
  EXPECT_EQ(test_accuracy(a, d.test), test_accuracy(b, d.test));
}

TEST(Trainer, ResumedRunEndsIdenticalToAnUninterruptedOne) {
  const auto d = synthetic_data();
  const auto dir = scratch_dir("trainer_resume");
  auto straight = tiny_mlp(3);
  train::Trainer(straight, small_training(4).label_smoothing(0.1)).fit(d.train, d.val);

  auto interrupted = tiny_mlp(3);
  const auto ckpt = (dir / "ckpt.pt").string();
  {
    train::Trainer t(interrupted, small_training(4).label_smoothing(0.1).checkpoint_path(ckpt));
    t.add_callback(std::make_shared<KillAtEpoch>(2));
    EXPECT_THROW(t.fit(d.train, d.val), std::runtime_error);
  }
  // A new process: fresh model object, state only from the checkpoint.
  auto resumed = tiny_mlp(99);
  train::Trainer t(resumed, small_training(4).label_smoothing(0.1).checkpoint_path(ckpt).resume(true));
  const auto r = t.fit(d.train, d.val);
  EXPECT_TRUE(r.resumed);
  ASSERT_EQ(r.epochs.size(), 4u);
  EXPECT_EQ(r.epochs[2].epoch, 2);
  expect_same_weights(weights(straight), weights(resumed));
}

// The report's history came from the resumed call alone: the epochs before the kill were lost.
TEST(Trainer, AResumedRunReportsEveryEpochIncludingThoseBeforeTheKill) {
  const auto d = synthetic_data();
  const auto dir = scratch_dir("trainer_resume_history");
  auto straight = tiny_mlp(3);
  const auto expected = train::Trainer(straight, small_training(4)).fit(d.train, d.val);

  auto interrupted = tiny_mlp(3);
  const auto ckpt = (dir / "ckpt.pt").string();
  {
    train::Trainer t(interrupted, small_training(4).checkpoint_path(ckpt));
    t.add_callback(std::make_shared<KillAtEpoch>(2));
    EXPECT_THROW(t.fit(d.train, d.val), std::runtime_error);
  }
  auto resumed = tiny_mlp(99);
  const auto r = train::Trainer(resumed, small_training(4).checkpoint_path(ckpt).resume(true)).fit(d.train, d.val);
  ASSERT_EQ(r.epochs.size(), expected.epochs.size());
  for (size_t i = 0; i < r.epochs.size(); ++i) {
    EXPECT_EQ(r.epochs[i].epoch, static_cast<int64_t>(i));
    EXPECT_EQ(r.epochs[i].train_loss, expected.epochs[i].train_loss) << "epoch " << i;
    EXPECT_EQ(r.epochs[i].val_accuracy, expected.epochs[i].val_accuracy) << "epoch " << i;
  }
}

TEST(Trainer, ResumeRefusesACheckpointFromAnotherConfiguration) {
  const auto d = synthetic_data();
  const auto ckpt = (scratch_dir("trainer_fingerprint") / "ckpt.pt").string();
  auto m = tiny_mlp(4);
  train::Trainer(m, small_training(1).checkpoint_path(ckpt)).fit(d.train, d.val);
  train::Trainer other(m, small_training(1).batch_size(16).checkpoint_path(ckpt).resume(true));
  try {
    other.fit(d.train, d.val);
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("different training configuration"), std::string::npos);
  }
}

TEST(Trainer, CorruptCheckpointIsReportedWithItsPath) {
  const auto d = synthetic_data();
  const auto ckpt = scratch_dir("trainer_corrupt") / "ckpt.pt";
  write_file(ckpt, "PK\x03\x04 garbage garbage");
  auto m = tiny_mlp(4);
  train::Trainer t(m, small_training(1).checkpoint_path(ckpt.string()).resume(true));
  try {
    t.fit(d.train, d.val);
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find(ckpt.string()), std::string::npos) << e.what();
  }
}

TEST(Trainer, NonFiniteLossStopsWithEpochAndStep) {
  const auto d = synthetic_data();
  auto m = tiny_mlp(5);
  train::Trainer t(m, small_training(2));
  int calls = 0;
  t.set_loss([&](const at::Tensor& logits, const at::Tensor&, const at::Tensor& y) {
    auto loss = torch::nn::functional::cross_entropy(logits, y);
    return ++calls == 20 ? loss * std::numeric_limits<float>::quiet_NaN() : loss;
  });
  try {
    t.fit(d.train);
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("loss is nan at epoch 2, step 3"), std::string::npos) << what;
  }
}

TEST(Trainer, NoStepCallsItemSoFortyStepsCallItAsOftenAsEight) {
  const auto options = small_training(1);
  const int64_t eight = item_calls_training_on(8 * 32, options), forty = item_calls_training_on(40 * 32, options);
  EXPECT_GT(eight, 0);  // the counter sees the epoch's summary
  EXPECT_EQ(forty, eight);
}

TEST(Trainer, GradientClippingCallsNoItemPerStep) {
  const auto options = small_training(1).grad_clip(0.5);
  EXPECT_EQ(item_calls_training_on(40 * 32, options), item_calls_training_on(8 * 32, options));
}

TEST(Trainer, CallbacksSeeEveryStepAndEpoch) {
  const auto d = synthetic_data();
  auto m = tiny_mlp(6);
  train::Trainer t(m, small_training(2));
  auto rec = std::make_shared<Recorder>();
  t.add_callback(rec);
  t.fit(d.train, d.val);
  const int64_t steps_per_epoch = (d.train.size() + 31) / 32;
  EXPECT_EQ(rec->steps, 2 * steps_per_epoch);
  EXPECT_EQ(rec->last_global, 2 * steps_per_epoch - 1);
  EXPECT_EQ(rec->events, (std::vector<std::string>{"begin", "epoch0", "epoch1", "end"}));
}

TEST(Trainer, GradientClippingBoundsTheUpdate) {
  const auto d = synthetic_data();
  auto m = tiny_mlp(7);
  const auto before = weights(m);
  // Plain SGD, lr 1, clip 1e-3: each step moves the weights by at most 1e-3 in L2 norm.
  train::Trainer(m, small_training(1)
                        .optimizer(train::OptimizerOptions().name(train::OptimizerKind::kSgd).lr(1.0).momentum(0))
                        .grad_clip(1e-3))
      .fit(d.train.head(32));
  double sq = 0;
  const auto after = weights(m);
  for (size_t i = 0; i < after.size(); ++i) sq += (after[i] - before[i]).pow(2).sum().item<double>();
  EXPECT_LE(std::sqrt(sq), 1e-3 * 1.0001);
  EXPECT_GT(std::sqrt(sq), 0.0);
}

TEST(Trainer, BadOptionsAreRejectedWithTheValue) {
  auto m = tiny_mlp(8);
  try {
    train::Trainer(m, small_training(1).label_smoothing(1.5));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "training: label_smoothing: expected a number in [0, 0.99], got 1.5");
  }
}

TEST(Trainer, AdamAndAdamWTrainToo) {
  const auto d = synthetic_data();
  for (const auto name : {train::OptimizerKind::kAdam, train::OptimizerKind::kAdamW}) {
    auto m = tiny_mlp(9);
    train::Trainer(m, small_training(3).optimizer(train::OptimizerOptions().name(name).lr(0.01))).fit(d.train);
    EXPECT_GT(test_accuracy(m, d.test), 0.85) << core::name_of(name);
  }
}

TEST(Metrics, ConfusionMatrixAndPerClassAccuracy) {
  train::ConfusionMeter meter(3);
  const auto logits = torch::tensor({{5., 0., 0.}, {0., 5., 0.}, {0., 5., 0.}, {0., 0., 5.}});
  meter.add(logits, torch::tensor({0, 1, 2, 2}, torch::kLong));
  const auto r = meter.result(0.0);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.75);
  EXPECT_EQ(r.confusion[2][1].item<int64_t>(), 1);
  EXPECT_EQ(r.per_class_accuracy, (std::vector<double>{1.0, 1.0, 0.5}));
}

namespace {

// argmax(1).eq(targets).sum(), the definition CorrectCounter's CPU pass must match.
int64_t reference_correct(const torch::Tensor& logits, const torch::Tensor& targets) {
  return logits.argmax(1).eq(targets).sum().item<int64_t>();
}

}  // namespace

TEST(Metrics, CorrectCountOfAFloatBatchMatchesArgmaxWithTiesAndNaN) {
  torch::manual_seed(4);
  // Small integers make ties frequent; a NaN in some rows, at the front, middle or end.
  auto logits = torch::randint(0, 3, {200, 7}).to(torch::kFloat);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = 0; i < 200; i += 9) logits[i][(i / 9) % 7] = nan;
  logits[5].fill_(nan);
  // With argmax's own answers as targets every row counts, and with any other class none does: a
  // row where the pass picks another index than argmax changes the total.
  const auto predicted = logits.argmax(1);
  train::CorrectCounter all, none;
  all.add(logits, predicted);
  none.add(logits, (predicted + 1) % 7);
  EXPECT_EQ(all.total(), 200);
  EXPECT_EQ(none.total(), 0);
  const auto targets = torch::randint(0, 7, {200}, torch::kLong);
  train::CorrectCounter counter;
  counter.add(logits, targets);
  EXPECT_EQ(counter.total(), reference_correct(logits, targets));
}

TEST(Metrics, CorrectCountAddsBatchesOnAndOffTheFastPath) {
  torch::manual_seed(5);
  const auto a = torch::randn({64, 10}), b = torch::randn({32, 10}, torch::kDouble), c = torch::randn({10, 64}).t();
  const auto ta = torch::randint(0, 10, {64}, torch::kLong), tb = torch::randint(0, 10, {32}, torch::kLong),
             tc = torch::randint(0, 10, {64}, torch::kLong);
  train::CorrectCounter counter;
  counter.add(a, ta);  // float: the CPU pass
  counter.add(b, tb);  // double: argmax on the tensor
  counter.add(c, tc);  // a transposed, non-contiguous float batch
  EXPECT_EQ(counter.total(), reference_correct(a, ta) + reference_correct(b, tb) + reference_correct(c, tc));
}

TEST(Metrics, CorrectCountRejectsMismatchedShapesWithThem) {
  train::CorrectCounter counter;
  try {
    counter.add(torch::zeros({4, 3}), torch::zeros({5}, torch::kLong));
    FAIL() << "no error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 3] and [5]"), std::string::npos) << e.what();
  }
}
