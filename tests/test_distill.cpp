// KD losses: Hinton's soft-target loss equals a hand computation and PyTorch's, no gradient
// reaches the teacher, feature capture and distillation with an adapter, cached teacher logits.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/format.h"
#include "data/synthetic.h"
#include "distill/distill_modifier.h"
#include "distill/kd_loss.h"
#include "helpers.h"
#include "io/pth_format.h"
#include "io/state_dict.h"
#include "models/feature_capture.h"
#include "models/registry.h"
#include "models/zoo.h"
#include "train/trainer.h"
#include "training_fixtures.h"

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
  const auto r = run_command("/usr/bin/python3 " + tests_dir() + "/python/kd_reference.py " +
                             (dir / "in.pth").string() + " " + (dir / "out.pth").string());
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

TEST(KdLoss, TheCosineObjectiveIsOneMinusEachRowsCosineAveraged) {
  // Row 0: the same direction (cosine 1); row 1: orthogonal (0); row 2: opposite (−1).
  const auto s = torch::tensor({{1.0f, 0.0f}, {0.0f, 2.0f}, {-3.0f, 0.0f}});
  const auto t = torch::tensor({{2.0f, 0.0f}, {1.0f, 0.0f}, {1.0f, 0.0f}});
  const auto cosine = distill::output_distance(s, t, distill::DistillObjective::kCosine, 4.0);
  EXPECT_NEAR(cosine.item<double>(), ((1 - 1) + (1 - 0) + (1 + 1)) / 3.0, 1e-6);
  const auto mse = distill::output_distance(s, t, distill::DistillObjective::kMse, 4.0);
  EXPECT_NEAR(mse.item<double>(), (1 + 0 + 1 + 4 + 16 + 0) / 6.0, 1e-6);
  // logits: the soft-target loss at the temperature given.
  EXPECT_DOUBLE_EQ(distill::output_distance(s, t, distill::DistillObjective::kLogits, 4.0).item<double>(),
                   distill::soft_target_loss(s, t, 4.0).item<double>());
}

TEST(KdLoss, NoGradientReachesTheTeacherUnderTheEmbeddingObjectives) {
  for (const auto objective : {distill::DistillObjective::kCosine, distill::DistillObjective::kMse}) {
    auto s = torch::randn({4, 5}, torch::requires_grad()), t = torch::randn({4, 5}, torch::requires_grad());
    distill::output_distance(s, t, objective, 1.0).backward();
    EXPECT_TRUE(s.grad().defined());
    EXPECT_FALSE(t.grad().defined());
  }
}

TEST(KdLoss, BadOptionsNameTheValue) {
  try {
    distill::validate(distill::KdLossOptions().alpha(1.5));
    FAIL() << "alpha 1.5 accepted";
  } catch (const core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "distill: alpha: expected a number in [0, 1], got 1.5");
  }
}

namespace {

// The hint loss after 200 Adam steps on the adapter alone, over the loss before them.
double adapter_trained_loss_ratio(distill::FeatureLoss& loss, const at::Tensor& s, const at::Tensor& t) {
  torch::optim::Adam opt(loss->parameters(), 0.05);
  const double before = loss->forward(s, t).item<double>();
  for (int i = 0; i < 200; ++i) {
    opt.zero_grad();
    loss->forward(s, t).backward();
    opt.step();
  }
  return loss->forward(s, t).item<double>() / before;
}

}  // namespace

TEST(FeatureLoss, AnAdapterBridgesWidthsAndTrainsTowardTheTeacher) {
  torch::manual_seed(4);
  distill::FeatureLoss loss(distill::FeatureLossOptions().student_channels(8).teacher_channels(16).spatial(true));
  ASSERT_TRUE(loss->has_adapter());
  const auto s = torch::randn({4, 8, 5, 5});
  const auto t = torch::randn({16, 8, 1, 1})
                     .squeeze(-1)
                     .squeeze(-1)
                     .matmul(s.permute({0, 2, 3, 1}).unsqueeze(-1))
                     .squeeze(-1)
                     .permute({0, 3, 1, 2});  // a linear map of the student's features
  EXPECT_LT(adapter_trained_loss_ratio(loss, s, t), 0.05);
}

TEST(FeatureLoss, TokenStatesOfAnotherWidthGetAnAdapterAppliedToEachToken) {
  torch::manual_seed(5);
  distill::FeatureLoss loss(distill::FeatureLossOptions().student_channels(8).teacher_channels(12).tokens(true));
  ASSERT_TRUE(loss->has_adapter());
  const auto s = torch::randn({3, 5, 8});
  const auto t = s.matmul(torch::randn({8, 12}));  // a linear map of each token's state
  EXPECT_LT(adapter_trained_loss_ratio(loss, s, t), 0.05);
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

data::Dataset noisy_data() {
  return data::make_synthetic(data::SyntheticOptions().samples(384).classes(4).shape({1, 8, 8}).noise(2.0).seed(3));
}

models::Model mlp(uint64_t seed, std::vector<int64_t> hidden) {
  torch::manual_seed(seed);
  return models::to_model(models::build_model(models::MlpOptions().hidden(hidden), {{1, 8, 8}, 4}));
}

}  // namespace

TEST(DistillModifier, TheTeacherGetsNoGradientAndIsNeverUpdated) {
  const auto data = noisy_data();
  auto teacher = mlp(1, {64});
  train::Trainer(teacher.module, teacher.forward, small_training(2)).fit(data);
  for (auto& p : teacher.module->parameters()) p.mutable_grad() = torch::Tensor();  // its own training's
  const auto before = io::state_dict(*teacher.module);
  auto student = mlp(2, {16});
  auto kd = std::make_shared<distill::DistillModifier>(teacher, "teacher", distill::DistillOptions());
  train::Trainer trainer(student.module, student.forward, small_training(2));
  trainer.add_modifier(kd);
  trainer.fit(data);
  const auto after = io::state_dict(*teacher.module);
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(before[i].tensor, after[i].tensor)) << before[i].name;
  }
  for (const auto& p : teacher.module->parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_EQ(kd->summary_as<distill::DistillSummary>()->distilled_steps, 2 * (data.size() / 32));
}

TEST(DistillModifier, TheTeacherCanStillBeTrainedAfterTeaching) {
  const auto data = noisy_data();
  auto teacher = mlp(1, {64});
  auto student = mlp(2, {16});
  train::Trainer trainer(student.module, student.forward, small_training(1));
  trainer.add_modifier(std::make_shared<distill::DistillModifier>(teacher, "teacher", distill::DistillOptions()));
  trainer.fit(data);
  for (const auto& p : teacher.module->parameters()) EXPECT_TRUE(p.requires_grad());
  const auto before = teacher.module->parameters()[0].detach().clone();
  train::Trainer(teacher.module, teacher.forward, small_training(1)).fit(data);
  EXPECT_FALSE(torch::equal(before, teacher.module->parameters()[0]));
}

TEST(DistillModifier, TheSoftTargetTermChangesWhatTheStudentLearns) {
  const auto data = noisy_data();
  auto teacher = mlp(1, {64});
  train::Trainer(teacher.module, teacher.forward, small_training(2)).fit(data);
  auto plain = mlp(2, {16}), distilled = mlp(2, {16});
  train::Trainer(plain.module, plain.forward, small_training(1)).fit(data);
  train::Trainer t(distilled.module, distilled.forward, small_training(1));
  t.add_modifier(std::make_shared<distill::DistillModifier>(
      teacher, "teacher", distill::DistillOptions().kd(distill::KdLossOptions().alpha(0.9))));
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

TEST(FeatureCapture, RecordsNamedLayerOutputsDuringTheModelsOwnForwardPass) {
  torch::manual_seed(4);
  auto net = models::build_model(models::MlpOptions().hidden({16, 8}), {{1, 8, 8}, 4});
  auto model = models::to_model(net);
  const auto x = torch::randn({5, 1, 8, 8});
  const auto out = models::forward_with_features(model, x, {"classifier.1", "classifier.3"});
  // The same layers run by hand: Linear, ReLU, Linear, ReLU.
  auto h = x.flatten(1);
  h = net->classifier->run_layer(1, net->classifier->run_layer(0, h));
  EXPECT_TRUE(torch::allclose(out.features.at("classifier.1"), h));
  h = net->classifier->run_layer(3, net->classifier->run_layer(2, h));
  EXPECT_TRUE(torch::allclose(out.features.at("classifier.3"), h));
  EXPECT_TRUE(torch::allclose(out.logits, net->forward(x)));
  EXPECT_EQ(out.features.at("classifier.3").sizes(), (std::vector<int64_t>{5, 8}));
}

TEST(FeatureCapture, CapturedOutputsCarryGradientsToTheModel) {
  auto model = mlp(1, {16});
  models::FeatureCapture capture(model.module, {"classifier.1"});
  model.forward(torch::randn({3, 1, 8, 8}));
  capture.at("classifier.1").sum().backward();
  EXPECT_TRUE(model.module->named_parameters()["classifier.0.weight"].grad().defined());
}

TEST(FeatureCapture, ReachesLayersInsideResidualBlocks) {
  torch::manual_seed(4);
  auto model = models::to_model(models::build_model(models::ResNetOptions().widths({4, 8}).blocks(1), {{1, 8, 8}, 4}));
  const auto layers = models::capturable_layers(model.module);
  ASSERT_NE(std::find(layers.begin(), layers.end(), "features.4.body.0"), layers.end()) << core::join(layers);
  const auto out =
      models::forward_with_features(model, torch::randn({2, 1, 8, 8}), {"features.4.body.0", "features.4"});
  EXPECT_EQ(out.features.at("features.4").size(1), 8);
  EXPECT_EQ(out.features.at("features.4.body.0").size(0), 2);
}

TEST(FeatureCapture, AnUnknownLayerIsRefusedWithTheModelsLayers) {
  auto model = mlp(1, {16});
  try {
    models::FeatureCapture capture(model.module, {"classifier.9"});
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("no layer 'classifier.9' to capture; the model's layers are: classifier.0, "
                                         "classifier.1, classifier.2"),
              std::string::npos)
        << e.what();
  }
}

TEST(FeatureCapture, ALayerInsideAFusedGroupSaysToCaptureTheGroupsLastLayer) {
  torch::manual_seed(4);
  auto net = models::build_model(models::MlpOptions().hidden({16}), {{1, 8, 8}, 4});
  auto model = models::to_model(net);
  // As quantizers fuse Linear + ReLU: one function stands for layers 0 and 1.
  auto* stack = net->classifier.get();
  net->classifier->set_override(0, 2,
                                [stack](const at::Tensor& x) { return stack->run_layer(1, stack->run_layer(0, x)); });
  models::FeatureCapture capture(model.module, {"classifier.0", "classifier.1"});
  model.forward(torch::randn({2, 1, 8, 8}));
  EXPECT_EQ(capture.at("classifier.1").size(1), 16);
  try {
    capture.at("classifier.0");
    FAIL() << "recorded";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("fused for quantization"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("capture the group's last layer"), std::string::npos) << e.what();
  }
}

TEST(FeatureCapture, StopsRecordingWhenDestroyed) {
  auto model = mlp(1, {16});
  auto net = std::dynamic_pointer_cast<models::ClassifierImpl>(model.module);
  int64_t calls = 0;
  net->classifier->add_tap(0, [&](const at::Tensor&) { ++calls; });
  { models::FeatureCapture capture(model.module, {"classifier.0"}); }
  model.forward(torch::randn({2, 1, 8, 8}));
  EXPECT_EQ(calls, 1);  // only the test's own tap is left
  EXPECT_EQ(models::capturable_layers(model.module).size(), 3u);
}

namespace {

std::vector<std::string> parameter_names(const torch::nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters()) names.push_back(p.key());
  for (const auto& b : m.named_buffers()) names.push_back(b.key());
  return names;
}

}  // namespace

TEST(DistillModifier, FeatureDistillationWithAnAdapterTrainsAndTheAdapterStaysOutOfTheStudent) {
  const auto data = noisy_data();
  auto teacher = mlp(1, {64});
  train::Trainer(teacher.module, teacher.forward, small_training(2)).fit(data);
  auto student = mlp(2, {16});
  const auto names_before = parameter_names(*student.module);
  auto kd = std::make_shared<distill::DistillModifier>(
      teacher, "teacher",
      distill::DistillOptions().features({distill::FeaturePair("classifier.1", "classifier.1").weight(0.5)}), student,
      data.inputs.narrow(0, 0, 2));
  ASSERT_EQ(kd->feature_losses().size(), 1u);
  ASSERT_TRUE(kd->feature_losses()[0]->has_adapter());
  const auto adapter = kd->feature_losses()[0]->named_parameters()["adapter.weight"];
  EXPECT_EQ(adapter.sizes(), (std::vector<int64_t>{64, 16}));
  const auto adapter_before = adapter.clone();
  train::Trainer trainer(student.module, student.forward, small_training(2));
  trainer.add_modifier(kd);
  trainer.fit(data);
  EXPECT_FALSE(torch::equal(adapter, adapter_before)) << "the optimizer never moved the adapter";
  EXPECT_EQ(parameter_names(*student.module), names_before);
  const auto dir = scratch_dir("distill_adapter");
  io::save_module(dir / "student.pt", *student.module);
  for (const auto& e : io::load_state_dict_file(dir / "student.pt")) {
    EXPECT_EQ(e.name.find("adapter"), std::string::npos) << e.name;
  }
  EXPECT_EQ(kd->summary_as<distill::DistillSummary>()->features.at(0).adapter, true);
}

TEST(DistillModifier, TheHintLossPullsTheStudentsFeaturesTowardTheTeachers) {
  const auto data = noisy_data();
  auto teacher = mlp(1, {16});
  train::Trainer(teacher.module, teacher.forward, small_training(2)).fit(data);
  const auto distance = [&](models::Model& student) {
    at::NoGradGuard no_grad;
    student.module->eval();
    const auto s = models::forward_with_features(student, data.inputs, {"classifier.1"}).features.at("classifier.1");
    const auto t = models::forward_with_features(teacher, data.inputs, {"classifier.1"}).features.at("classifier.1");
    return at::mse_loss(s, t).item<double>();
  };
  auto plain = mlp(2, {16}), hinted = mlp(2, {16});
  train::Trainer(plain.module, plain.forward, small_training(2)).fit(data);
  train::Trainer t(hinted.module, hinted.forward, small_training(2));
  t.add_modifier(std::make_shared<distill::DistillModifier>(
      teacher, "teacher",
      distill::DistillOptions()
          .kd(distill::KdLossOptions().alpha(0))
          .features({distill::FeaturePair("classifier.1", "classifier.1").weight(1)}),
      hinted, data.inputs.narrow(0, 0, 2)));
  t.fit(data);
  EXPECT_LT(distance(hinted), 0.5 * distance(plain));
}

TEST(DistillModifier, FeaturePairsNeedTheStudentToSizeTheirAdapters) {
  auto teacher = mlp(1, {16});
  try {
    distill::DistillModifier kd(
        teacher, "teacher", distill::DistillOptions().features({distill::FeaturePair("classifier.1", "classifier.1")}));
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("needs the student and example inputs"), std::string::npos) << e.what();
  }
}

TEST(DistillModifier, MismatchedFeatureShapesAreNamed) {
  auto teacher = models::to_model(models::build_model(models::ConvNetOptions().channels({4}).fc({8}), {{1, 8, 8}, 4}));
  auto student = mlp(2, {16});
  try {
    distill::DistillModifier kd(
        teacher, "teacher", distill::DistillOptions().features({distill::FeaturePair("classifier.1", "features.0")}),
        student, torch::randn({2, 1, 8, 8}));
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("feature pair classifier.1 -> features.0: student output [2, 16] and teacher "
                                         "output [2, 4, 8, 8] cannot be matched"),
              std::string::npos)
        << e.what();
  }
}

TEST(DistillModifier, CachedTeacherLogitsGiveTheSameRunAsUncachedOnes) {
  const auto data = noisy_data();
  auto teacher = mlp(1, {64});
  train::Trainer(teacher.module, teacher.forward, small_training(2)).fit(data);
  const auto run = [&](bool cache) {
    auto student = mlp(2, {16});
    auto kd = std::make_shared<distill::DistillModifier>(teacher, "teacher",
                                                         distill::DistillOptions().cache_teacher_logits(cache));
    train::Trainer trainer(student.module, student.forward, small_training(3));
    trainer.add_modifier(kd);
    trainer.fit(data);
    return std::make_pair(io::state_dict(*student.module), *kd->summary_as<distill::DistillSummary>());
  };
  const auto [cached, cached_summary] = run(true);
  const auto [uncached, uncached_summary] = run(false);
  const int64_t steps = data.size() / 32;
  EXPECT_EQ(cached_summary.teacher_passes, steps);  // the first epoch only
  EXPECT_EQ(cached_summary.cached_steps, 2 * steps);
  EXPECT_EQ(uncached_summary.teacher_passes, 3 * steps);
  ASSERT_EQ(cached.size(), uncached.size());
  for (size_t i = 0; i < cached.size(); ++i) {
    EXPECT_TRUE(torch::allclose(cached[i].tensor, uncached[i].tensor, 1e-5, 1e-6)) << cached[i].name;
  }
}

TEST(DistillModifier, CachedTeacherLogitsCallNoItemPerStep) {
  auto teacher = mlp(1, {64});
  const auto item_calls = [&](int64_t samples) {
    const auto data =
        data::make_synthetic(data::SyntheticOptions().samples(samples).classes(4).shape({1, 8, 8}).seed(3));
    auto student = mlp(2, {16});
    train::Trainer trainer(student.module, student.forward, small_training(2));
    trainer.add_modifier(std::make_shared<distill::DistillModifier>(teacher, "teacher", distill::DistillOptions()));
    ItemCounter counter;
    trainer.fit(data);
    return counter.calls();
  };
  EXPECT_EQ(item_calls(40 * 32), item_calls(8 * 32));  // the second epoch of each is served from the cache
}

TEST(DistillModifier, AugmentedBatchesAlwaysRunTheTeacher) {
  const auto data = noisy_data();
  auto teacher = mlp(1, {64});
  auto student = mlp(2, {16});
  auto kd = std::make_shared<distill::DistillModifier>(teacher, "teacher", distill::DistillOptions());
  train::Trainer trainer(student.module, student.forward, small_training(2).augment(data::AugmentOptions().shift(1)));
  trainer.add_modifier(kd);
  trainer.fit(data);
  EXPECT_EQ(kd->summary_as<distill::DistillSummary>()->teacher_passes, 2 * (data.size() / 32));
  EXPECT_EQ(kd->summary_as<distill::DistillSummary>()->cached_steps, 0);
}

namespace {

// Trains a student for 3 epochs straight, and again killed in epoch 2 and resumed from a different
// start; expects both to end bit-identical, student and distillation state alike, and to report the
// same teacher passes (a resumed run recomputing its logits would show more).
void expect_resume_is_bit_identical(const distill::DistillOptions& o, const std::string& dir_name) {
  const auto dir = scratch_dir(dir_name);
  const auto data = noisy_data();
  auto teacher = mlp(1, {64});
  train::Trainer(teacher.module, teacher.forward, small_training(2)).fit(data);
  const auto make = [&](models::Model& student) {
    return o.features().empty() ? std::make_shared<distill::DistillModifier>(teacher, "teacher", o)
                                : std::make_shared<distill::DistillModifier>(teacher, "teacher", o, student,
                                                                             data.inputs.narrow(0, 0, 2));
  };
  auto straight = mlp(2, {16});
  auto kd_a = make(straight);
  train::Trainer a(straight.module, straight.forward, small_training(3));
  a.add_modifier(kd_a);
  a.fit(data);

  auto killed = mlp(2, {16});
  train::Trainer k(killed.module, killed.forward, small_training(3).checkpoint_path((dir / "c.pt").string()));
  k.add_modifier(make(killed));
  k.add_callback(std::make_shared<KillAtEpoch>(2));
  EXPECT_THROW(k.fit(data), std::runtime_error);

  torch::manual_seed(77);  // the adapters of the resumed run start elsewhere too
  auto resumed = mlp(9, {16});
  auto kd_b = make(resumed);
  train::Trainer b(resumed.module, resumed.forward,
                   small_training(3).checkpoint_path((dir / "c.pt").string()).resume(true));
  b.add_modifier(kd_b);
  EXPECT_TRUE(b.fit(data).resumed);

  const auto sa = io::state_dict(*straight.module), sb = io::state_dict(*resumed.module);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(torch::equal(sa[i].tensor, sb[i].tensor)) << sa[i].name;
  ASSERT_EQ(kd_a->feature_losses().size(), kd_b->feature_losses().size());
  for (size_t i = 0; i < kd_a->feature_losses().size(); ++i) {
    const auto pa = kd_a->feature_losses()[i]->parameters(), pb = kd_b->feature_losses()[i]->parameters();
    for (size_t j = 0; j < pa.size(); ++j) EXPECT_TRUE(torch::equal(pa[j], pb[j])) << "adapter " << i;
  }
  const auto summary_a = kd_a->summary_as<distill::DistillSummary>(),
             summary_b = kd_b->summary_as<distill::DistillSummary>();
  EXPECT_EQ(summary_a->distilled_steps, summary_b->distilled_steps);
  EXPECT_EQ(summary_a->teacher_passes, summary_b->teacher_passes);
  EXPECT_EQ(summary_a->cached_steps, summary_b->cached_steps);
}

}  // namespace

TEST(DistillModifier, AResumedRunWithCachedLogitsEndsBitIdentical) {
  expect_resume_is_bit_identical(distill::DistillOptions(), "distill_resume_cache");
}

TEST(DistillModifier, AResumedRunContinuesTheFeatureAdaptersBitIdentically) {
  expect_resume_is_bit_identical(
      distill::DistillOptions().features({distill::FeaturePair("classifier.1", "classifier.1").weight(0.5)}),
      "distill_resume_features");
}

TEST(FeatureLoss, PaddingInAMaskedTokenHintCountsForNothing) {
  torch::manual_seed(6);
  distill::FeatureLoss loss(distill::FeatureLossOptions().tokens(true));
  const auto s = torch::randn({2, 4, 6}), t = torch::randn({2, 4, 6});
  const auto mask = torch::tensor({1, 1, 1, 0, 1, 1, 0, 0}, torch::kBool).view({2, 4});
  const double masked = loss->forward(s, t, mask).item<double>();
  // Each token's mean squared difference, averaged over the 5 tokens.
  const double by_hand = ((s - t).pow(2).mean(-1) * mask).sum().item<double>() / 5.0;
  EXPECT_NEAR(masked, by_hand, 1e-6);
  auto other = s.clone();
  other.index_put_({mask.logical_not()}, 100.0);  // only the padding changes
  EXPECT_NEAR(loss->forward(other, t, mask).item<double>(), masked, 1e-6);
  EXPECT_GT(std::abs(loss->forward(s, t).item<double>() - masked), 1e-3) << "the mask changed nothing";
}

TEST(FeatureLoss, AMaskedCosineHintIsTheCosineOverTheTokensAlone) {
  torch::manual_seed(7);
  distill::FeatureLoss loss(distill::FeatureLossOptions().tokens(true).distance(distill::FeatureDistance::kCosine));
  const auto s = torch::randn({2, 3, 4}), t = torch::randn({2, 3, 4});
  const auto mask = torch::tensor({1, 1, 0, 1, 0, 0}, torch::kBool).view({2, 3});
  const auto cos0 = at::cosine_similarity(s[0].narrow(0, 0, 2).flatten(), t[0].narrow(0, 0, 2).flatten(), 0);
  const auto cos1 = at::cosine_similarity(s[1][0], t[1][0], 0);
  EXPECT_NEAR(loss->forward(s, t, mask).item<double>(), 1.0 - (cos0 + cos1).item<double>() / 2.0, 1e-6);
}

TEST(FeatureLoss, ATokenMaskOfAnotherShapeIsNamed) {
  distill::FeatureLoss loss(distill::FeatureLossOptions().tokens(true));
  const auto s = torch::randn({2, 4, 6});
  try {
    loss->forward(s, s, torch::ones({2, 5}, torch::kBool));
    FAIL() << "accepted";
  } catch (const core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "the token mask [2, 5] does not match the features [2, 4, 6]")) << e.what();
  }
}
