// Comparison of runs: Pareto frontiers, baseline deltas, environments kept apart, renderings.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "helpers.h"
#include "report/compare.h"
#include "report/pareto.h"

using namespace shrink;
using report::Tradeoff;

namespace {

report::StageReport stage(int64_t index, const std::string& kind, double accuracy, int64_t bytes, double p50_at_1) {
  report::StageReport s;
  s.index = index;
  s.kind = kind;
  s.model = "m";
  s.metrics.accuracy = accuracy;
  s.metrics.size_bytes = bytes;
  s.metrics.latency = {{1, p50_at_1, p50_at_1 * 1.1, p50_at_1 * 1.3, 1000 / p50_at_1}};
  return s;
}

report::ComparedRun run(const std::string& name, std::vector<report::StageReport> stages, int64_t threads = 2) {
  report::ComparedRun r;
  r.label = name;
  r.source = "runs/" + name + "/report.json";
  r.report.recipe.name = name;
  r.report.environment = {"0.2.0", "1.13.0", "cpu", "Some CPU", threads, report::kLatencyOnTestSplit};
  r.report.stages = std::move(stages);
  return r;
}

// Dense 0.90 / 1 MB / 1.0 ms; pruned 0.89 / 100 kB / 0.9 ms; worse 0.85 / 200 kB / 2.0 ms; int8 0.895 / 300 kB / 0.5
// ms.
std::vector<report::ComparedRun> three_runs(int64_t third_threads = 2) {
  return {run("dense", {stage(0, "train", 0.90, 1000000, 1.0)}),
          run("pruned", {stage(0, "train", 0.90, 1000000, 1.0), stage(1, "prune", 0.89, 100000, 0.9)}),
          run("int8", {stage(0, "quantize", 0.895, 300000, 0.5), stage(1, "prune", 0.85, 200000, 2.0)}, third_threads)};
}

}  // namespace

TEST(Pareto, ADominatedPointIsOffTheFront) {
  EXPECT_EQ(report::pareto_front({{1, 0.9}, {2, 0.8}, {0.5, 0.7}}), (std::vector<bool>{true, false, true}));
}

TEST(Pareto, EqualPointsAreBothOnTheFront) {
  EXPECT_EQ(report::pareto_front({{1, 0.9}, {1, 0.9}}), (std::vector<bool>{true, true}));
}

TEST(Pareto, NonFinitePointsAreNeverOnTheFrontAndDominateNothing) {
  EXPECT_EQ(report::pareto_front({{NAN, 0.99}, {1, 0.5}}), (std::vector<bool>{false, true}));
}

TEST(Compare, RowsAreEveryStageOfEveryRunWithDeltaAndRatioAgainstTheBaseline) {
  const auto c = report::compare(three_runs(), 0);
  ASSERT_EQ(c.rows.size(), 5u);
  EXPECT_NEAR(c.rows[2].delta_pt, -1.0, 1e-9);  // pruned stage 1: 0.89 vs 0.90
  EXPECT_NEAR(c.rows[2].ratio, 10.0, 1e-9);     // 1 MB / 100 kB
  EXPECT_EQ(c.stage(c.rows[3]).kind, "quantize");
}

TEST(Compare, SizeFrontKeepsOnlyUndominatedModels) {
  const auto c = report::compare(three_runs(), 0);
  std::vector<bool> front;
  for (const auto& r : c.rows) front.push_back(r.size_front);
  // 0.90@1MB (twice), 0.89@100kB, 0.895@300kB are on it; 0.85@200kB is beaten by 0.89@100kB.
  EXPECT_EQ(front, (std::vector<bool>{true, true, true, true, false}));
}

TEST(Compare, FlopsFrontRanksOnlyTheRowsWhoseFlopsWereCounted) {
  auto runs = three_runs();
  // Row 0 is the dense run, rows 1-2 the pruned run's stages: the pruned stage's fewer FLOPs at
  // 0.89 and the dense 0.90 are both undominated, and row 1 (0.90, as many FLOPs) ties row 0. The
  // int8 run's rows have no count.
  runs[0].report.stages[0].metrics.flops = 2'000'000;
  runs[1].report.stages[0].metrics.flops = 2'000'000;
  runs[1].report.stages[1].metrics.flops = 500'000;
  const auto c = report::compare(runs, 0);
  std::vector<bool> front;
  for (const auto& r : c.rows) front.push_back(r.flops_front);
  EXPECT_EQ(front, (std::vector<bool>{true, true, true, false, false}));
  const std::string md = report::to_markdown(c);
  EXPECT_NE(md.find("| 0.000 | 500.0 k | 0.900 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| A | size, FLOPs |"), std::string::npos) << md;
}

TEST(Compare, LatencyFrontRanksOnlyRowsMeasuredLikeTheBaseline) {
  const auto c = report::compare(three_runs(/*third_threads=*/1), 0);
  ASSERT_EQ(c.environments.size(), 2u);
  EXPECT_EQ(c.rows[3].latency_front.count(1), 0u);  // int8 run, other thread count: not ranked
  EXPECT_TRUE(c.rows[2].latency_front.at(1));       // pruned 0.9 ms is now the fastest ranked
  const std::string md = report::to_markdown(c);
  EXPECT_NE(md.find("2 different environments (threads 1 vs 2)"), std::string::npos) << md;
}

TEST(Compare, RunsWhoseLatencyWasTimedOnOtherInputsAreMeasuredApart) {
  auto runs = three_runs();
  runs[2].report.environment.latency_inputs = report::kLatencyOnNoise;  // a report from an older shrink
  const auto c = report::compare(runs, 0);
  ASSERT_EQ(c.environments.size(), 2u);
  EXPECT_EQ(c.rows[3].latency_front.count(1), 0u);
  const std::string md = report::to_markdown(c);
  EXPECT_NE(md.find("2 different environments (latency timed on N(0, 1) noise vs test split)"), std::string::npos)
      << md;
}

TEST(Compare, OneEnvironmentIsNotFlagged) {
  const auto c = report::compare(three_runs(), 0);
  EXPECT_EQ(c.environments.size(), 1u);
  EXPECT_EQ(report::to_markdown(c).find("Warning"), std::string::npos);
  EXPECT_FALSE(report::to_json(c).at("mixed_environments").get<bool>());
}

TEST(Compare, ABaselinePastTheLastRowIsAUsageErrorThatCountsTheRows) {
  try {
    report::compare(three_runs(), 5);
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--baseline 5 is past the last row (4)"), std::string::npos) << e.what();
  }
}

TEST(Compare, TwoRunsOfOneRecipeAreToldApartByTheirFolders) {
  auto runs = three_runs();
  runs[1].report.recipe.name = "dense";
  runs[1].label = "dense";
  const auto c = report::compare(runs, 0);
  EXPECT_EQ(c.runs[0].label, "dense (dense)");
  EXPECT_EQ(c.runs[1].label, "dense (pruned)");
}

TEST(Compare, MarkdownRowShowsAccuracyDeltaSizeRatioLatencyAndFront) {
  const std::string md = report::to_markdown(report::compare(three_runs(), 0));
  EXPECT_NE(
      md.find("| 2 | pruned | 1 prune | m | 0.8900 | -1.00 | 97.7 KiB | 10.0x | 0.000 | — | 0.900 | 1.170 | 1111 | A | "
              "size |"),
      std::string::npos)
      << md;
}

TEST(Compare, HtmlHasBothParetoChartsAndNoScript) {
  const std::string html = report::to_html(report::compare(three_runs(), 0));
  EXPECT_NE(html.find("accuracy vs size"), std::string::npos);
  EXPECT_NE(html.find("accuracy vs latency, batch 1"), std::string::npos);
  EXPECT_NE(html.find("<title>Pareto frontier</title>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(Compare, AFolderWithoutAReportIsAUsageErrorNamingIt) {
  const auto dir = shrink::testing::scratch_dir("compare_no_report");
  try {
    report::load_compared_run(dir);
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.string() + ": a folder without report.json"), std::string::npos)
        << e.what();
  }
}

TEST(Compare, ARunsModelAsBroughtComesFirstAndIsTheDefaultBaseline) {
  auto brought = run("from-file", {stage(0, "prune", 0.88, 100000, 0.9)});
  brought.report.initial = {stage(-1, "initial", 0.90, 1000000, 1.0)};
  const auto c = report::compare({brought}, 0);
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_TRUE(c.rows[0].initial);
  EXPECT_EQ(c.stage(c.rows[0]).kind, "initial");
  EXPECT_NEAR(c.rows[1].delta_pt, -2.0, 1e-9);  // 0.88 vs the 0.90 it was brought at
  EXPECT_NEAR(c.rows[1].ratio, 10.0, 1e-9);
  EXPECT_TRUE(shrink::testing::contains(report::to_markdown(c), "from-file [initial]"));
}
