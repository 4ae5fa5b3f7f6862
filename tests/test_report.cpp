// Report: the shrink.report/1 JSON contract, its round trip and the Markdown rendering.
#include <gtest/gtest.h>

#include "compress/quantize/quantization_summary.h"
#include "core/error.h"
#include "helpers.h"
#include "report/report.h"
#include "report_fixtures.h"

using namespace shrink;
using nlohmann::json;

using shrink::testing::contains;
using shrink::testing::sample_report;

TEST(Report, JsonFollowsTheSchemaContract) {
  const json j = report::to_json(sample_report());
  EXPECT_EQ(j.at("schema"), "shrink.report/1");
  for (const char* k : {"name", "path", "sha256"}) EXPECT_TRUE(j.at("recipe").at(k).is_string()) << k;
  for (const char* k : {"shrink_version", "torch_version", "device", "cpu", "latency_inputs"})
    EXPECT_TRUE(j.at("environment").at(k).is_string()) << k;
  EXPECT_TRUE(j.at("environment").at("threads").is_number_integer());
  const auto& st = j.at("stages").at(0);
  for (const char* k : {"index", "kind", "model", "wall_s", "metrics", "artifacts"}) EXPECT_TRUE(st.contains(k)) << k;
  const auto& m = st.at("metrics");
  for (const char* k : {"accuracy", "loss", "params", "nonzero_params", "sparsity", "size_bytes", "latency"}) {
    EXPECT_TRUE(m.contains(k)) << k;
  }
  for (const char* k : {"batch", "p50_ms", "p90_ms", "p99_ms", "samples_per_s"})
    EXPECT_TRUE(m.at("latency").at(0).contains(k)) << k;
  EXPECT_EQ(st.at("artifacts").at("pt"), "stage-0-train/m.pt");
  EXPECT_EQ(st.at("training").at("steps"), 10);
  EXPECT_EQ(st.at("training").at("epochs").at(1).at("val_accuracy"), 0.75);
  EXPECT_EQ(m.at("confusion"), json::parse("[[3,1],[0,4]]"));
  EXPECT_EQ(j.at("recipe").at("effective").at("seed"), 3);
  EXPECT_EQ(j.at("recipe").at("overrides"), json::parse(R"(["seed=3"])"));
}

TEST(Report, RoundTripsThroughJson) {
  const auto r = report::report_from_json(report::to_json(sample_report()));
  EXPECT_EQ(report::to_json(r), report::to_json(sample_report()));
  ASSERT_EQ(r.stages.at(0).layers.size(), 1u);
  EXPECT_EQ(r.stages[0].layers[0].nonzero, 5);
  EXPECT_EQ(r.stages[0].metrics.per_class_accuracy, (std::vector<double>{0.75, 1.0}));
  EXPECT_EQ(r.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(r.sensitivity.at("m").tensors.at(0).second.at(0), 0.85);
  ASSERT_TRUE(r.stages[0].training.has_value());
  EXPECT_EQ(r.stages[0].training->epochs.at(1).train_accuracy, 0.8);
  EXPECT_EQ(r.stages[0].metrics.confusion.at(0).at(1), 1);
  EXPECT_EQ(r.recipe.overrides, (std::vector<std::string>{"seed=3"}));
  EXPECT_EQ(r.stages[0].modifiers->at(0).window.end_epoch, 2.5);
}

TEST(Report, TheModelsAsBroughtRoundTripAndComeFirstInTheMarkdown) {
  auto r = sample_report();
  auto initial = r.stages[0];
  initial.index = -1;
  initial.kind = "initial";
  initial.metrics.accuracy = 0.95;
  initial.metrics.size_bytes = 8000;
  initial.training.reset();
  initial.modifiers.reset();
  r.initial = {initial};
  const auto back = report::report_from_json(report::to_json(r));
  ASSERT_EQ(back.initial.size(), 1u);
  EXPECT_EQ(back.initial[0].kind, "initial");
  EXPECT_EQ(report::to_json(back), report::to_json(r));
  const auto md = report::to_markdown(r);
  EXPECT_LT(md.find("| — | initial | m | 0.9500"), md.find("| 0 | train | m | 0.9000")) << md;
  EXPECT_TRUE(contains(md, "| 0 | train | m | -5.00 pt | 2.00x |")) << md;
}

TEST(Report, ReadsReportsWrittenBeforeTheEffectiveRecipeWasKept) {
  json j = report::to_json(sample_report());
  j["recipe"].erase("effective");
  j["recipe"].erase("overrides");
  j["stages"][0]["metrics"].erase("confusion");
  const auto r = report::report_from_json(j);
  EXPECT_TRUE(r.recipe.effective.empty());
  EXPECT_TRUE(r.stages[0].metrics.confusion.empty());
}

TEST(Report, AReportWithoutLatencyInputsWasTimedOnNoise) {
  json j = report::to_json(sample_report());
  EXPECT_EQ(j["environment"]["latency_inputs"], "test split");
  j["environment"].erase("latency_inputs");
  EXPECT_EQ(report::report_from_json(j).environment.latency_inputs, "N(0, 1) noise");
}

TEST(Report, SensitivityWithTooFewAccuraciesIsRejectedNamingTheTensor) {
  json j = report::to_json(sample_report());
  j["sensitivity"]["m"]["tensors"]["classifier.0.weight"] = json::array();
  try {
    report::report_from_json(j);
    FAIL() << "accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'classifier.0.weight' has 0 accuracies for 1 levels"), std::string::npos)
        << e.what();
  }
}

TEST(Report, RejectsAnotherSchema) {
  json j = report::to_json(sample_report());
  j["schema"] = "other/2";
  EXPECT_THROW(report::report_from_json(j), core::Error);
}

TEST(Report, AStageSectionCannotOverwriteAContractField) {
  auto r = sample_report();
  r.stages[0].sections.push_back(std::make_shared<train::RawSection>("metrics", nlohmann::json(1)));
  try {
    report::to_json(r);
    FAIL() << "no error";
  } catch (const core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "report section 'metrics' would overwrite a report field")) << e.what();
  }
}

TEST(Report, MarkdownHasTheStageAndLatencyTables) {
  const std::string md = report::to_markdown(sample_report());
  EXPECT_NE(md.find("| 0 | train | m | 0.9000 | 0.3000 | 100 | 80 | 0.200 | — | 3.9 KiB | 1.5 s |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| 0 | m | 64 | 1.000 | 1.100 | 1.200 | 64000 |"), std::string::npos) << md;
}

TEST(Report, TypedSectionsComeBackTyped) {
  auto r = sample_report();
  auto q = std::make_shared<compress::quantize::QuantizationSummary>();
  q->method = "static";
  q->backend = "onednn";
  q->int8_layers = {"classifier.0"};
  q->float_layers = {{"classifier.2", "excluded by the recipe (exclude)"}};
  q->calibration_samples = 256;
  r.stages[0].sections.push_back(q);
  const auto back = report::report_from_json(report::to_json(r));
  const auto* read = back.stages[0].section<compress::quantize::QuantizationSummary>();
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(read->int8_layers, q->int8_layers);
  EXPECT_EQ(read->float_layers.at(0).reason, "excluded by the recipe (exclude)");
  EXPECT_EQ(*read->calibration_samples, 256);
  const auto* pruning =
      dynamic_cast<const compress::prune::PruneSummary*>(back.stages[0].modifiers->at(0).summary.get());
  ASSERT_NE(pruning, nullptr);
  EXPECT_EQ(pruning->schedule, "agp");
}

TEST(Report, SectionsAndModifiersNoCodeKnowsAreKeptAsTheyWere) {
  auto j = report::to_json(sample_report());
  j["stages"][0]["from_a_newer_shrink"] = {{"x", 1}};
  j["stages"][0]["modifiers"].push_back(
      {{"kind", "users_own"}, {"start_epoch", 1.0}, {"end_epoch", -1.0}, {"strength", 0.5}});
  const auto again = report::to_json(report::report_from_json(j));
  EXPECT_EQ(again["stages"][0]["from_a_newer_shrink"], j["stages"][0]["from_a_newer_shrink"]);
  EXPECT_EQ(again["stages"][0]["modifiers"][1], j["stages"][0]["modifiers"][1]);
}
