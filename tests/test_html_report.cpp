// report.html and its SVG charts: round ticks, escaped text, every section drawn, and a page
// that renders in headless Chromium with no console message (which also proves it loads nothing).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "distill/distill_summary.h"
#include "helpers.h"
#include "report/html_report.h"
#include "report/svg_chart.h"
#include "report_fixtures.h"

using namespace shrink;
using report::svg::ticks;

namespace {

// The shared sample, with a name that needs escaping.
report::Report sample() {
  auto r = shrink::testing::sample_report();
  r.recipe.name = "demo <&> run";
  return r;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(SvgChart, LinearTicksAreRoundStepsCoveringTheRange) {
  EXPECT_EQ(ticks(0.13, 0.91, false), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
}

TEST(SvgChart, LogTicksOverFewDecadesAreOneTwoFive) {
  EXPECT_EQ(ticks(1, 100, true), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
}

TEST(SvgChart, LogTicksOverManyDecadesArePowersOfTen) {
  EXPECT_EQ(ticks(1e3, 1e7, true), (std::vector<double>{1e3, 1e4, 1e5, 1e6, 1e7}));
}

TEST(SvgChart, AnEmptyRangeIsAnErrorNotALoop) { EXPECT_THROW(ticks(1, 1, false), core::Error); }

TEST(SvgChart, ARaggedConfusionMatrixIsRejected) {
  EXPECT_THROW(report::svg::heat_map("x", {}, {{1, 2}, {3}}), core::Error);
}

TEST(HtmlReport, EveryNameIsEscaped) {
  const std::string html = report::to_html(sample());
  EXPECT_NE(html.find("demo &lt;&amp;&gt; run"), std::string::npos);
  EXPECT_EQ(html.find("demo <&> run"), std::string::npos);
}

TEST(HtmlReport, ForbidsEveryNetworkLoadAndHasNoScript) {
  const std::string html = report::to_html(sample());
  EXPECT_NE(html.find("Content-Security-Policy\" content=\"default-src 'none'"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // only the SVG namespace
}

TEST(HtmlReport, DrawsStageBarsCurvesSparsityConfusionAndSensitivity) {
  const std::string html = report::to_html(sample());
  // 3 stage bar charts, loss + accuracy curves, per-layer sparsity, heat map + per-class bars, sensitivity.
  EXPECT_EQ(count(html, "<svg "), 9u) << html;
  EXPECT_NE(html.find("loss per epoch"), std::string::npos);
  EXPECT_NE(html.find("pruning sensitivity of m"), std::string::npos);
  EXPECT_NE(html.find("cat → dog: 1"), std::string::npos);  // the heat map's off-diagonal cell
}

TEST(HtmlReport, ModifierWindowsAreShadedOnTheTrainingCurves) {
  const std::string html = report::to_html(sample());
  EXPECT_EQ(count(html, "<title>prune</title></rect>"), 2u);  // on the loss and the accuracy chart
}

TEST(HtmlReport, ADistillBaselineIsDrawnBesideTheDistilledStudentsAccuracy) {
  auto r = sample();
  auto distillation = std::make_shared<distill::DistillationReport>();
  distillation->distill = {{0, -1}, std::make_shared<distill::DistillSummary>()};
  distillation->alone_accuracy = 0.6;
  distillation->alone_training = train::TrainingHistory{{{1, 1.0, 0.5, 0.9, 0.6, 0.1, 2.0, 500}}, false, 5};
  r.stages[0].sections.push_back(distillation);
  const std::string html = report::to_html(r);
  EXPECT_NE(html.find("<title>validation accuracy, student alone</title>"), std::string::npos);
}

TEST(HtmlReport, NamesTheOverridesAndPrintsTheEffectiveRecipe) {
  const std::string html = report::to_html(sample());
  EXPECT_NE(html.find("<code>seed=3</code>"), std::string::npos);
  EXPECT_NE(html.find("seed: 3"), std::string::npos);
}

// The page as a user opens it: chromium renders a run's report.html with no console message
// (a blocked load or a rendering error would print one) and the screenshot is not blank.
TEST(HtmlReport, RendersInHeadlessChromiumWithNoConsoleMessages) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) GTEST_SKIP() << "chromium not installed";
  const auto dir = shrink::testing::scratch_dir("html_chromium");
  const auto recipe = dir / "r.yaml";
  shrink::testing::write_file(recipe, shrink::testing::synthetic_recipe(3));
  ASSERT_EQ(shrink::testing::run_shrink("run --no-progress --out " + (dir / "run").string() + " " + recipe.string())
                .exit_code,
            0);
  const auto shot = dir / "shot.png";
  const auto r = shrink::testing::run_command(
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 "
      "--user-data-dir=" +
      (dir / "profile").string() + " --window-size=1280,2000 --screenshot=" + shot.string() + " file://" +
      (dir / "run" / "report.html").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find(":CONSOLE"), std::string::npos) << r.output;
  const std::string png = shrink::testing::read_file(shot);
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  // A blank 1280×2000 page compresses to a few kB; charts and tables make it far larger.
  EXPECT_GT(png.size(), 40000u) << "screenshot looks blank";
}
