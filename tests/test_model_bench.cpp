// The interleaved model benchmark behind `shrink bench`.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "models/model.h"
#include "report/model_bench.h"

using namespace shrink;

namespace {

report::BenchModel linear(const std::string& label, int64_t out) {
  torch::manual_seed(0);
  torch::nn::Linear layer(16, out);
  return {label, models::to_model(layer), {16}, c10::kCPU, at::Tensor()};
}

// A Linear that keeps the last batch it was called on.
struct RecordingImpl : torch::nn::Module {
  torch::nn::Linear layer{nullptr};
  at::Tensor last;
  RecordingImpl() { layer = register_module("layer", torch::nn::Linear(3, 2)); }
  at::Tensor forward(const at::Tensor& x) {
    last = x.clone();
    return layer(x);
  }
};
TORCH_MODULE(Recording);

// Three samples of 3 features, each row a different constant.
at::Tensor three_samples() { return at::arange(3, at::kFloat).unsqueeze(1).repeat({1, 3}); }

}  // namespace

TEST(ModelBench, ResultsAreBatchMajorWithModelsInTheOrderGiven) {
  std::vector<report::BenchModel> models{linear("a", 4), linear("b", 8)};
  const auto r = report::bench_models(models, report::BenchOptions().batch_sizes({1, 4}).budget_s(0.2).progress(false));
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].label, "a");
  EXPECT_EQ(r[1].label, "b");
  EXPECT_EQ(r[1].latency.batch, 1);
  EXPECT_EQ(r[2].latency.batch, 4);
}

TEST(ModelBench, AModelCountsAsStableOnlyAfterItsMinimumIterations) {
  std::vector<report::BenchModel> models{linear("a", 4)};
  // A median allowed to move by its own size holds from the second round: stability then waits
  // only for the minimum.
  const auto r = report::bench_models(
      models,
      report::BenchOptions().batch_sizes({1}).budget_s(30).min_iterations(5000).stable_within(1.0).progress(false));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].stable);
  EXPECT_GE(r[0].iterations, 5000);
  EXPECT_LE(r[0].latency.p50_ms, r[0].latency.p90_ms);
  EXPECT_LE(r[0].latency.p90_ms, r[0].latency.p99_ms);
}

TEST(ModelBench, TheReportsLatencyIsShrinkBenchsTimingOfTheSameModel) {
  // measure_latency (report.json) is bench_models on one model: the same path and the same floor
  // of timed calls for the same settings.
  const auto m = linear("a", 4);
  const auto latency =
      report::measure_latency(m.model, m.sample_shape, at::Tensor(), c10::kCPU,
                              report::LatencyOptions().batch_sizes({1, 8}).warmup(2).iterations(40).fast_path(false));
  std::vector<report::BenchModel> models{m};
  const auto bench = report::bench_models(
      models,
      report::BenchOptions().batch_sizes({1, 8}).warmup(2).min_iterations(40).budget_s(3).fast_path(false).progress(
          false));
  ASSERT_EQ(latency.size(), bench.size());
  for (size_t i = 0; i < bench.size(); ++i) {
    EXPECT_EQ(latency[i].batch, bench[i].latency.batch);
    EXPECT_EQ(latency[i].path, bench[i].latency.path);
    EXPECT_EQ(latency[i].path, "plain");
  }
}

TEST(ModelBench, PeakResidentMemoryIsReadOnLinux) {
  std::vector<report::BenchModel> models{linear("a", 4)};
  const auto r = report::bench_models(models, report::BenchOptions().batch_sizes({1}).budget_s(0.1).progress(false));
  EXPECT_GT(r[0].peak_rss_bytes, 1 << 20);  // at least the loaded LibTorch
}

TEST(ModelBench, ANonPositiveBudgetIsRejectedWithTheValue) {
  std::vector<report::BenchModel> models{linear("a", 4)};
  try {
    report::bench_models(models, report::BenchOptions().budget_s(0));
    FAIL() << "accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bench budget must be > 0 s, got 0"), std::string::npos) << e.what();
  }
}

TEST(ModelBench, TheFileTimedAndRestoredIsAStateDictFileNeverTheOnnx) {
  EXPECT_EQ(report::bench_artifact({{"onnx", "m.onnx"}, {"pth", "m.pth"}}), "m.pth");
  EXPECT_EQ(report::bench_artifact({{"h5", "m.h5"}, {"pt", "m.pt"}, {"pth", "m.pth"}}), "m.pt");
  try {
    report::bench_artifact({{"onnx", "m.onnx"}});
    FAIL() << "an .onnx alone was taken";
  } catch (const core::Error& e) {
    EXPECT_STREQ(e.what(), "the stage saved no model file shrink restores (.pt, .h5 or .pth)");
  }
}

TEST(ModelBench, ABatchIsTheFirstSamplesCycledWhereThereAreFewerThanItsSize) {
  Recording rec;
  const report::BenchModel m{"r", models::to_model(rec), {3}, c10::kCPU, three_samples()};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  EXPECT_TRUE(at::equal(report::bench_batch(m, 2, gen), three_samples().slice(0, 0, 2)));
  const auto five = report::bench_batch(m, 5, gen);
  EXPECT_TRUE(at::equal(five.select(1, 0), at::tensor({0.0f, 1.0f, 2.0f, 0.0f, 1.0f})));
}

TEST(ModelBench, ModelsWithSamplesAreTimedOnThemAndTheOthersOnNoise) {
  Recording with, without;
  std::vector<report::BenchModel> models{{"data", models::to_model(with), {3}, c10::kCPU, three_samples()},
                                         {"noise", models::to_model(without), {3}, c10::kCPU, at::Tensor()}};
  report::bench_models(models, report::BenchOptions().batch_sizes({4}).budget_s(0.1).fast_path(false).progress(false));
  ASSERT_TRUE(with->last.defined());
  EXPECT_TRUE(at::equal(with->last.select(1, 0), at::tensor({0.0f, 1.0f, 2.0f, 0.0f})));
  ASSERT_TRUE(without->last.defined());
  EXPECT_EQ(without->last.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_FALSE(at::equal(without->last.select(1, 0), without->last.select(1, 1)));  // N(0, 1), not rows of one value
}

TEST(ModelBench, TheReportsLatencyIsTimedOnTheSamplesItIsGiven) {
  Recording rec;
  report::measure_latency(models::to_model(rec), {3}, three_samples(), c10::kCPU,
                          report::LatencyOptions().batch_sizes({2}).warmup(1).iterations(5).fast_path(false));
  ASSERT_TRUE(rec->last.defined());
  EXPECT_TRUE(at::equal(rec->last, three_samples().slice(0, 0, 2)));
}

TEST(ModelBench, SamplesOfAnotherShapeThanTheModelsAreRejectedNamingBoth) {
  Recording rec;
  const report::BenchModel m{"r", models::to_model(rec), {4}, c10::kCPU, three_samples()};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  try {
    report::bench_batch(m, 2, gen);
    FAIL() << "accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bench: r: samples of shape [3, 3] for a model whose samples are [4]"),
              std::string::npos)
        << e.what();
  }
}
