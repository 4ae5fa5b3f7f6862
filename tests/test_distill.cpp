// KD losses: Hinton's soft-target loss equals a hand computation and PyTorch's, no gradient
// reaches the teacher, and feature distillation with an adapter trains.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "data/synthetic.h"
#include "distill/distill_modifier.h"
#include "distill/kd_loss.h"
#include "io/state_dict.h"
#include "models/registry.h"
#include "train/trainer.h"
#include "helpers.h"
#include "io/pth_format.h"

using namespace shrink;
using namespace shrink::testing;

namespace {

// float32 softmax/log arithmetic in a different order than PyTorch's kl_div.
constexpr double kMaxKdLossError = 1e-5;

}  // namespace

TEST(KdLoss, SoftTargetLossEqualsAHandComputation) {
  // One sample, two classes, T = 2: p_t = softmax([2, 0]/2), p_s = softmax([0, 0]/2) = [0.5, 0.5].
  const auto s = torch::tensor({{0.0f, 0.0f}}), t = torch::tensor({{2.0f, 0.0f}});
  const double e = std::exp(1.0), pt0 = e / (e + 1), pt1 = 1 / (e + 1);
  const double kl = pt0 * std::log(pt0 / 0.5) + pt1 * std::log(pt1 / 0.5);
  EXPECT_NEAR(distill::soft_target_loss(s, t, 2.0).item<double>(), 4.0 * kl, kMaxKdLossError);
}

TEST(KdLoss, EqualsPyTorchsKlDivBatchmeanTimesTSquared) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("kd_vs_torch");
  torch::manual_seed(3);
  const auto s = torch::randn({16, 10}) * 3, t = torch::randn({16, 10}) * 3;
  const auto y = torch::randint(0, 10, {16});
  io::write_pth(dir / "in.pth", {{"student", s, false}, {"teacher", t, false}, {"targets", y, false}});
  const auto r = run_command("/usr/bin/python3 " + tests_dir() + "/python/kd_reference.py " + (dir / "in.pth").string() +
                             " " + (dir / "out.pth").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::map<std::string, torch::Tensor> ref;
  for (const auto& e : io::read_pth(dir / "out.pth")) ref[e.name] = e.tensor;
  EXPECT_NEAR(distill::soft_target_loss(s, t, 2.0).item<double>(), ref["soft_T2"].item<double>(), kMaxKdLossError);
  EXPECT_NEAR(distill::soft_target_loss(s, t, 4.0).item<double>(), ref["soft_T4"].item<double>(), kMaxKdLossError);
  EXPECT_NEAR(distill::kd_loss(s, t, y, distill::KdLossOptions().temperature(4).alpha(0.5)).item<double>(),
              ref["kd_T4_a05"].item<double>(), kMaxKdLossError);
}

TEST(KdLoss, NoGradientReachesTheTeacher) {
  auto s = torch::randn({4, 5}, torch::requires_grad()), t = torch::randn({4, 5}, torch::requires_grad());
  distill::kd_loss(s, t, torch::randint(0, 5, {4}), {}).backward();
  EXPECT_TRUE(s.grad().defined());
  EXPECT_FALSE(t.grad().defined());
}

TEST(KdLoss, BadOptionsNameTheValue) {
  try {
    distill::validate(distill::KdLossOptions().alpha(1.5));
    FAIL() << "alpha 1.5 accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("alpha must be in [0, 1], got 1.5"), std::string::npos) << e.what();
  }
}

TEST(FeatureLoss, AnAdapterBridgesWidthsAndTrainsTowardTheTeacher) {
  torch::manual_seed(4);
  distill::FeatureLoss loss(distill::FeatureLossOptions().student_channels(8).teacher_channels(16).spatial(true));
  ASSERT_TRUE(loss->has_adapter());
  const auto s = torch::randn({4, 8, 5, 5});
  const auto t = torch::randn({16, 8, 1, 1}).squeeze(-1).squeeze(-1).matmul(s.permute({0, 2, 3, 1}).unsqueeze(-1))
                     .squeeze(-1).permute({0, 3, 1, 2});  // a linear map of the student's features
  torch::optim::Adam opt(loss->parameters(), 0.05);
  const double before = loss->forward(s, t).item<double>();
  for (int i = 0; i < 200; ++i) {
    opt.zero_grad();
    loss->forward(s, t).backward();
    opt.step();
  }
  EXPECT_LT(loss->forward(s, t).item<double>(), before * 0.05);
}

TEST(FeatureLoss, MismatchedWidthsWithoutAnAdapterSayHowToGetOne) {
  distill::FeatureLoss loss{distill::FeatureLossOptions()};
  try {
    loss->forward(torch::randn({2, 4}), torch::randn({2, 6}));
    FAIL() << "accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("set student_channels and teacher_channels"), std::string::npos) << e.what();
  }
}

namespace {

data::Dataset synthetic() {
  return data::make_synthetic(data::SyntheticOptions().samples(384).classes(4).shape({1, 8, 8}).noise(2.0).seed(3));
}

train::TrainerOptions options(int64_t epochs) {
  return train::TrainerOptions()
      .epochs(epochs)
      .batch_size(32)
      .optimizer(train::OptimizerOptions().name("sgd").lr(0.05).momentum(0.9))
      .seed(5)
      .progress(false);
}

models::Model mlp(uint64_t seed, std::vector<int64_t> hidden) {
  torch::manual_seed(seed);
  return models::to_model(models::build_model(models::MlpOptions().hidden(hidden), {{1, 8, 8}, 4}));
}

}  // namespace

TEST(DistillModifier, TheTeacherGetsNoGradientAndIsNeverUpdated) {
  const auto data = synthetic();
  auto teacher = mlp(1, {64});
  train::Trainer(teacher.module, teacher.forward, options(2)).fit(data);
  for (auto& p : teacher.module->parameters()) p.mutable_grad() = torch::Tensor();  // its own training's
  const auto before = io::state_dict(*teacher.module);
  auto student = mlp(2, {16});
  auto kd = std::make_shared<distill::DistillModifier>(teacher, "teacher", distill::DistillOptions());
  train::Trainer trainer(student.module, student.forward, options(2));
  trainer.add_modifier(kd);
  trainer.fit(data);
  const auto after = io::state_dict(*teacher.module);
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(before[i].tensor, after[i].tensor)) << before[i].name;
  }
  for (const auto& p : teacher.module->parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_EQ(kd->summary()["distilled_steps"], 2 * (data.size() / 32));
}

TEST(DistillModifier, TheSoftTargetTermChangesWhatTheStudentLearns) {
  const auto data = synthetic();
  auto teacher = mlp(1, {64});
  train::Trainer(teacher.module, teacher.forward, options(2)).fit(data);
  auto plain = mlp(2, {16}), distilled = mlp(2, {16});
  train::Trainer(plain.module, plain.forward, options(1)).fit(data);
  train::Trainer t(distilled.module, distilled.forward, options(1));
  t.add_modifier(std::make_shared<distill::DistillModifier>(teacher, "teacher",
                                                             distill::DistillOptions().kd(distill::KdLossOptions().alpha(0.9))));
  t.fit(data);
  EXPECT_FALSE(torch::equal(io::state_dict(*plain.module)[0].tensor, io::state_dict(*distilled.module)[0].tensor));
}

TEST(DistillModifier, AModelCannotTeachItself) {
  auto m = mlp(1, {8});
  distill::DistillModifier kd(m, "self", distill::DistillOptions());
  try {
    kd.prepare(*m.module);
    FAIL() << "accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be its own teacher"), std::string::npos) << e.what();
  }
}
