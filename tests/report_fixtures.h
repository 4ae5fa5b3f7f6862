// A small report with every section filled (training curve, modifiers, layers, confusion,
// sensitivity, effective recipe), shared by the JSON, Markdown and HTML report tests.
#pragma once

#include "compress/prune/prune_summary.h"
#include "report/report.h"

namespace shrink::testing {

inline report::Report sample_report() {
  report::Report r;
  r.recipe.name = "demo";
  r.recipe.path = "recipes/demo.yaml";
  r.recipe.sha256 = std::string(64, 'a');
  r.recipe.effective = {{"name", "demo"}, {"seed", 3}};
  r.recipe.overrides = {"seed=3"};
  r.environment = {"0.1.0", "1.13.0", "cpu", "Some CPU", 2, report::kLatencyOnTestSplit};
  report::StageReport s;
  s.index = 0;
  s.kind = "train";
  s.model = "m";
  s.wall_s = 1.5;
  s.metrics.accuracy = 0.9;
  s.metrics.loss = 0.3;
  s.metrics.params = 100;
  s.metrics.nonzero_params = 80;
  s.metrics.sparsity = 0.2;
  s.metrics.size_bytes = 4000;
  s.metrics.latency = {{1, 0.1, 0.2, 0.3, 10000}, {64, 1.0, 1.1, 1.2, 64000}};
  s.artifacts = {{"pt", "stage-0-train/m.pt"}, {"h5", "stage-0-train/m.h5"}};
  s.training = report::TrainingHistory{
      {{1, 0.9, 0.6, 0.8, 0.65, 0.1, 2.0, 500}, {2, 0.5, 0.8, 0.6, 0.75, 0.05, 2.0, 500}}, false, 10};
  auto pruning = std::make_shared<compress::prune::PruneSummary>();
  pruning->scope = "layer";
  pruning->schedule = "agp";
  pruning->target_sparsity = 0.8;
  pruning->sparsity = 0.79;
  pruning->window = {0.0, 2.5};
  s.modifiers = std::vector<train::ModifierRecord>{{{0.0, 2.5}, pruning}};
  s.metrics.per_class_accuracy = {0.75, 1.0};
  s.metrics.confusion = {{3, 1}, {0, 4}};
  s.layers = {{"classifier.0.weight", {4, 3}, 12, 5, 7.0 / 12.0}};
  r.stages.push_back(s);
  r.class_names = {"cat", "dog"};
  r.sensitivity["m"] = {"m.h5", "validation", "weights", 0.9, {0.5}, {{"classifier.0.weight", {0.85}}}};
  return r;
}

}  // namespace shrink::testing
