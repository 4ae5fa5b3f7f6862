// Mixed precision: autocast scopes, bf16 training on the CPU, fp16's loss scaler, and the errors
// for combinations a device cannot run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/cpu_features.h"
#include "core/error.h"
#include "data/synthetic.h"
#include "helpers.h"
#include "models/registry.h"
#include "train/precision.h"
#include "train/trainer.h"
#include "training_fixtures.h"

using namespace shrink;
using namespace shrink::testing;

namespace {

data::Dataset noisy_data(int64_t samples, uint64_t stream) {
  return data::make_synthetic(data::SyntheticOptions().samples(samples).classes(4).shape({1, 8, 8}).noise(1.0).seed(11),
                              stream);
}

}  // namespace

TEST(Precision, InsideABf16ScopeMatmulsRunInBf16AndAfterItInFp32) {
  if (!cpu_bf16_available())
    GTEST_SKIP() << "bf16 on the CPU needs AVX-512 (this CPU path: " << core::cpu_paths() << ")";
  const auto a = torch::rand({4, 4}), b = torch::rand({4, 4});
  {
    const train::AutocastScope scope(c10::kCPU, train::Precision::kBf16);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
}

TEST(Precision, AnFp32ScopeChangesNothing) {
  const train::AutocastScope scope(c10::kCPU, train::Precision::kFp32);
  EXPECT_EQ(torch::mm(torch::rand({2, 2}), torch::rand({2, 2})).scalar_type(), torch::kFloat);
}

TEST(Precision, Bf16TrainingOnTheCpuLearnsAndKeepsFp32Weights) {
  if (!cpu_bf16_available())
    GTEST_SKIP() << "bf16 on the CPU needs AVX-512 (this CPU path: " << core::cpu_paths() << ")";
  const auto train_set = noisy_data(600, 0), test = noisy_data(200, 1);
  auto m = tiny_mlp(3);
  train::Trainer(m, small_training(5).precision(train::Precision::kBf16)).fit(train_set);
  for (const auto& p : m->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);
  const auto r = train::evaluate(
      *m, [&](const at::Tensor& x) { return m->forward(x); }, test);
  EXPECT_GT(r.accuracy, 0.9);
}

TEST(Precision, Bf16TrainingDiffersFromFp32SoTheScopeIsReallyApplied) {
  if (!cpu_bf16_available())
    GTEST_SKIP() << "bf16 on the CPU needs AVX-512 (this CPU path: " << core::cpu_paths() << ")";
  const auto train_set = noisy_data(256, 0);
  auto a = tiny_mlp(4), b = tiny_mlp(4);
  train::Trainer(a, small_training(1)).fit(train_set);
  train::Trainer(b, small_training(1).precision(train::Precision::kBf16)).fit(train_set);
  EXPECT_FALSE(torch::equal(a->parameters()[0], b->parameters()[0]));
  EXPECT_TRUE(torch::allclose(a->parameters()[0], b->parameters()[0], 0, 0.05));
}

TEST(Precision, Fp16OnTheCpuIsRefusedBeforeTrainingSayingUseBf16) {
  auto m = tiny_mlp(5);
  const auto before = m->parameters()[0].clone();
  try {
    train::Trainer(m, small_training(1).precision(train::Precision::kFp16)).fit(noisy_data(64, 0));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "precision fp16 needs a CUDA device, got cpu; use bf16 on the CPU");
  }
  EXPECT_TRUE(torch::equal(before, m->parameters()[0]));
}

TEST(Precision, Bf16OnACpuPathWithoutAvx512IsRefusedNamingThePath) {
  if (cpu_bf16_available()) GTEST_SKIP() << "this CPU path has AVX-512 (the cpu_path.avx2 run checks the refusal)";
  auto m = tiny_mlp(5);
  try {
    train::Trainer(m, small_training(1).precision(train::Precision::kBf16)).fit(noisy_data(64, 0));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "precision bf16 on the CPU needs AVX-512")) << e.what();
    EXPECT_TRUE(contains(e.what(), core::cpu_paths())) << e.what();
  }
}

TEST(Precision, AnUnknownPrecisionIsRejectedWithTheValueAndTheChoices) {
  try {
    train::training_spec().parse(YAML::Load("{precision: fp8}"));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "precision must be one of fp32, bf16, fp16; got 'fp8'");
  }
}

TEST(LossScaler, UnscalingDividesTheGradientsBackExactly) {
  train::LossScaler scaler(1024.0);
  auto w = torch::tensor({0.5f, -1.25f}, torch::requires_grad());
  scaler.scale((w * w).sum()).backward();
  EXPECT_TRUE(scaler.unscale({w}));
  EXPECT_TRUE(torch::equal(w.grad(), torch::tensor({1.0f, -2.5f})));
}

TEST(LossScaler, AnOverflowReportsNonFiniteAndHalvesTheScaleAndRestartsTheCount) {
  train::LossScaler scaler(1024.0, 3);
  scaler.update(true);
  auto w = torch::tensor({1.0f}, torch::requires_grad());
  w.mutable_grad() = torch::tensor({std::numeric_limits<float>::infinity()});
  EXPECT_FALSE(scaler.unscale({w}));
  scaler.update(false);
  EXPECT_EQ(scaler.current_scale(), 512.0);
  EXPECT_EQ(scaler.finite_steps(), 0);
}

TEST(LossScaler, TheScaleDoublesAfterGrowthIntervalFiniteStepsInARow) {
  train::LossScaler scaler(8.0, 3);
  scaler.update(true);
  scaler.update(true);
  EXPECT_EQ(scaler.current_scale(), 8.0);
  scaler.update(true);
  EXPECT_EQ(scaler.current_scale(), 16.0);
  EXPECT_EQ(scaler.finite_steps(), 0);
}
