// Quantization-aware training: the straight-through gradient, conversion to the int8 model the
// training simulated, pruning zeros kept, learnable scales trained, and resume bit-identical.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "compress/prune/l1_pruner.h"
#include "compress/quantize/fake_quantize.h"
#include "compress/quantize/qat.h"
#include "core/cpu_features.h"
#include "data/synthetic.h"
#include "helpers.h"
#include "io/state_dict.h"
#include "models/registry.h"
#include "train/trainer.h"
#include "training_fixtures.h"

using namespace shrink;
using namespace shrink::testing;
namespace q = shrink::compress::quantize;

namespace {

// The int8 model against the fake-quantized float model it was trained as, relative to the
// logits' spread: both round to the same grid, but accumulate in different orders. It holds on
// every CPU path: where oneDNN sums u8 × s8 pairs in 16 bits, QAT's weights have 7 bits and no pair
// saturates (0.11 before, on AVX2 and AVX-512 without VNNI; 0.51 on LibTorch 2.15's oneDNN).
constexpr double kMaxQatToInt8RelativeError = 0.05;

models::Model convnet(uint64_t seed) {
  torch::manual_seed(seed);
  return models::to_model(
      models::build_model(models::ConvNetOptions().channels({4, 8}).fc({16}).batch_norm(true), {{1, 8, 8}, 4}));
}

q::QatOptions qat_options() { return q::QatOptions().freeze_observers_epoch(2).freeze_bn_epoch(2); }

// item() calls in one epoch of QAT fine-tuning (observers on) over `samples` samples, batch 32.
int64_t item_calls_in_a_qat_epoch(int64_t samples) {
  const auto data = tiny_data(samples);
  auto model = convnet(7);
  auto qat = std::make_shared<q::QatModifier>(model, qat_options());
  train::Trainer trainer(model.module, model.forward, small_training(1).batch_size(32));
  trainer.add_modifier(qat);
  ItemCounter counter;
  trainer.fit(data);
  return counter.calls();
}

// Fine-tunes the convnet 3 epochs under QAT with `options` and converts it. int8_error: the int8
// model's largest distance from the fake-quantized model it was trained as, over the logits' spread.
struct QatRun {
  std::shared_ptr<q::QatModifier> qat;
  double int8_error = 0;
};

QatRun train_and_convert(const q::QatOptions& options) {
  const auto data = tiny_data(384);
  auto model = convnet(1);
  QatRun run{std::make_shared<q::QatModifier>(model, options)};
  train::Trainer trainer(model.module, model.forward, small_training(3));
  trainer.add_modifier(run.qat);
  trainer.fit(data);
  const auto probe = data.inputs.slice(0, 0, 64);
  torch::NoGradGuard no_grad;
  model.module->eval();
  const auto simulated = model.forward(probe);
  run.qat->finish(model);
  if (!run.qat->finished()) throw std::runtime_error("QAT did not convert");
  const auto int8 = model.forward(probe);
  run.int8_error = ((int8 - simulated).abs().max() / (simulated.max() - simulated.min())).item<double>();
  return run;
}

}  // namespace

TEST(Qat, ObservingCallsNoItemPerStepSoFortyStepsCallItAsOftenAsEight) {
  EXPECT_EQ(item_calls_in_a_qat_epoch(40 * 32), item_calls_in_a_qat_epoch(8 * 32));
}

TEST(FakeQuantize, GradientIsTheStraightThroughEstimator) {
  q::FakeQuantize fq(
      q::ObserverOptions().kind(shrink::compress::quantize::ObserverKind::kMinMax).dtype(q::QDtype::kQUInt8));
  fq->forward(torch::tensor({-1.0f, 1.0f}));  // fixes the range to [-1, 1]
  fq->enable_observer(false);
  auto x = torch::tensor({-2.0f, -0.5f, 0.3f, 1.7f}, torch::requires_grad());
  const auto y = fq->forward(x);
  y.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::tensor({0.0f, 1.0f, 1.0f, 0.0f})));
  // The forward pass rounds to the grid: one step is 2/255.
  const auto step = 2.0f / 255.0f;
  EXPECT_NEAR(y[2].item<float>() / step, std::round(y[2].item<float>() / step), 1e-3);
  EXPECT_FLOAT_EQ(y[3].item<float>(),
                  fq->qparams().scale.item<float>() * (255 - fq->qparams().zero_point.item<int64_t>()));
}

TEST(FakeQuantize, AReducedPrecisionInputIsFakeQuantizedInFp32) {
  q::FakeQuantize fq(
      q::ObserverOptions().kind(shrink::compress::quantize::ObserverKind::kMinMax).dtype(q::QDtype::kQUInt8));
  const auto x = torch::tensor({-1.0f, 0.25f, 1.0f});
  const auto from_fp32 = fq->forward(x);
  const auto from_bf16 = fq->forward(x.to(torch::kBFloat16));
  EXPECT_EQ(from_bf16.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(from_bf16, from_fp32));  // every input is exact in bf16
}

TEST(Qat, FineTuningUnderBf16AutocastConvertsToInt8) {
  if (!cpu_bf16_available())
    GTEST_SKIP() << "bf16 on the CPU needs AVX-512 (this CPU path: " << core::cpu_paths() << ")";
  const auto data = tiny_data(384);
  auto model = convnet(1);
  auto qat = std::make_shared<q::QatModifier>(model, qat_options());
  train::Trainer trainer(model.module, model.forward, small_training(3).precision(train::Precision::kBf16));
  trainer.add_modifier(qat);
  trainer.fit(data);
  qat->finish(model);
  EXPECT_TRUE(qat->finished());
  EXPECT_EQ(qat->summary_as<q::QatSummary>()->int8_layers->size(), 4u) << qat->summary()->to_json().dump();
}

TEST(Qat, TheInt8ModelComputesWhatTheFakeQuantizedModelTrained) {
  const auto run = train_and_convert(qat_options());
  EXPECT_TRUE(run.qat->observers_frozen());
  EXPECT_TRUE(run.qat->bn_frozen());
  ASSERT_EQ(run.qat->transforms().size(), 1u);
  EXPECT_EQ(run.qat->summary_as<q::QatSummary>()->int8_layers->size(), 4u) << run.qat->summary()->to_json().dump();
  EXPECT_LT(run.int8_error, kMaxQatToInt8RelativeError) << "CPU path: " << core::cpu_paths();
}

TEST(Qat, WeightsDefaultToSevenBitsExactlyWhereInt8SumsMaySaturate) {
  auto model = convnet(1);
  q::QatModifier qat(model, qat_options());
  const auto summary = std::dynamic_pointer_cast<const q::QatSummary>(qat.summary());
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->weights.reduce_range(), q::int8_sums_may_saturate(q::Backend::kOneDnn))
      << "CPU path: " << core::cpu_paths();
  EXPECT_FALSE(summary->activations.reduce_range());
}

TEST(Qat, ReducedRangeActivationsAreRefusedSayingTheInt8KernelsWouldNotClampThere) {
  const auto options =
      qat_options().activations(q::default_qat_activation_observer(q::Backend::kOneDnn).reduce_range(true));
  try {
    q::validate(options);
    FAIL() << "no error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "activations.reduce_range is for PTQ")) << e.what();
  }
}

TEST(Qat, PrunedZerosStayZeroInTheInt8Model) {
  const auto data = tiny_data(384);
  auto model = convnet(2);
  auto pruner =
      std::make_shared<compress::prune::L1Pruner>(model.module, compress::prune::PruneOptions().sparsity(0.6));
  auto qat = std::make_shared<q::QatModifier>(model, qat_options());
  train::Trainer trainer(model.module, model.forward, small_training(3));
  trainer.add_modifier(pruner);
  trainer.add_modifier(qat);
  trainer.fit(data);
  std::map<std::string, torch::Tensor> zeros;
  for (const auto& p : model.module->named_parameters()) {
    if (p.value().dim() >= 2) zeros[p.key()] = p.value().eq(0).clone();
  }
  qat->finish(model);
  const auto buffers = model.module->named_buffers();
  for (const auto& [name, z] : zeros) {
    const auto w = buffers[name];
    ASSERT_EQ(w.scalar_type(), torch::kChar) << name;
    EXPECT_GE(z.to(torch::kFloat).mean().item<double>(), 0.59) << name;
    EXPECT_TRUE(w.masked_select(z).eq(0).all().item<bool>()) << name << ": a pruned weight became nonzero";
  }
}

TEST(Qat, LearnableScalesReachTheOptimizerAndTrainAfterTheObserversFreeze) {
  const auto data = tiny_data(384);
  auto model = convnet(3);
  auto qat = std::make_shared<q::QatModifier>(model, qat_options().freeze_observers_epoch(1).learnable_scales(true));
  train::Trainer trainer(model.module, model.forward, small_training(3));
  trainer.add_modifier(qat);
  qat->prepare(*model.module);
  const auto scales = qat->extra_parameters();
  ASSERT_EQ(scales.size(), 8u);  // input and output of 4 groups
  trainer.fit(data);
  // Scales left where the observer put them at the freeze would all equal their qparams'; training moved them.
  bool moved = false;
  for (const auto& s : scales) moved = moved || s.grad().defined();
  EXPECT_TRUE(moved);
}

TEST(Qat, ResumeRestoresObserverStateBitIdentically) {
  const auto dir = scratch_dir("qat_resume");
  const auto data = tiny_data(384);
  auto straight = convnet(4);
  auto qat_a = std::make_shared<q::QatModifier>(straight, qat_options());
  train::Trainer a(straight.module, straight.forward, small_training(3));
  a.add_modifier(qat_a);
  a.fit(data);
  qat_a->finish(straight);

  auto killed = convnet(4);
  train::Trainer k(killed.module, killed.forward, small_training(3).checkpoint_path((dir / "c.pt").string()));
  k.add_modifier(std::make_shared<q::QatModifier>(killed, qat_options()));
  k.add_callback(std::make_shared<KillAtEpoch>(2));
  EXPECT_THROW(k.fit(data), std::runtime_error);

  auto resumed = convnet(9);  // different initial weights: everything must come from the checkpoint
  auto qat_b = std::make_shared<q::QatModifier>(resumed, qat_options());
  train::Trainer b(resumed.module, resumed.forward,
                   small_training(3).checkpoint_path((dir / "c.pt").string()).resume(true));
  b.add_modifier(qat_b);
  EXPECT_TRUE(b.fit(data).resumed);
  qat_b->finish(resumed);

  const auto sa = io::state_dict(*straight.module), sb = io::state_dict(*resumed.module);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].name, sb[i].name);
    EXPECT_TRUE(torch::equal(sa[i].tensor, sb[i].tensor)) << sa[i].name;
  }
}

TEST(Qat, AWindowThatNeverOpensIsAnErrorAtFinish) {
  const auto data = tiny_data(64);
  auto model = convnet(5);
  auto qat = std::make_shared<q::QatModifier>(model, q::QatOptions().start_epoch(5));
  train::Trainer trainer(model.module, model.forward, small_training(1));
  trainer.add_modifier(qat);
  trainer.fit(data);
  try {
    qat->finish(model);
    FAIL() << "converted with no observations";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("began after training ended"), std::string::npos) << e.what();
  }
}
// Weights observed in 7 bits (reduce_range) were stored clamped to the full 8-bit range, keeping
// values fake quantization had clamped: the int8 model was 1.0 of the logits' spread off.
TEST(Qat, SevenBitWeightsAreStoredClampedAsFakeQuantizationClampedThem) {
  const auto run = train_and_convert(qat_options().weights(
      q::default_weight_observer(q::Backend::kOneDnn).kind(q::ObserverKind::kMovingAverage).reduce_range(true)));
  EXPECT_LT(run.int8_error, kMaxQatToInt8RelativeError) << "CPU path: " << core::cpu_paths();
}
