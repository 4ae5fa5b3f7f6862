// The interleaved model benchmark behind `shrink bench`.
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
  return {label, models::to_model(layer), {16}, c10::kCPU};
}

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
      report::measure_latency(m.model, m.sample_shape, c10::kCPU,
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
