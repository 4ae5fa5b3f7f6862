// `shrink sensitivity` as a recipe-level job: load a recipe model's trained weights, sweep
// per-tensor pruning levels, and record the result beside the run's report.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "compress/prune/l1_pruner.h"
#include "recipe/recipe.h"
#include "report/report.h"

namespace shrink::recipe {

struct SensitivityRunOptions {
  std::string model;              // a model name of the recipe
  std::filesystem::path out_dir;  // the run folder
  std::filesystem::path weights;  // empty: the model's last float (not int8) artifact in out_dir/report.json
  std::vector<double> levels = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  std::vector<std::string> include;  // tensor regexes; empty: weights of rank >= 2
  // weights: each tensor's smallest weights; channels: each layer's output channels (by `method`).
  compress::prune::PruneStructure structure = compress::prune::PruneStructure::kWeights;
  compress::prune::PruneMethod method = compress::prune::PruneMethod::kL1;
  // channels: a residual stream's channels swept as one unit (together) or left out (whole).
  compress::prune::ResidualChannels residual = compress::prune::ResidualChannels::kWhole;
  bool progress = true;
};

// Writes out_dir/sensitivity-<model>.json and, when the run has a report, adds the result to
// report.json, report.md and report.html.
report::Sensitivity run_sensitivity(const Recipe& recipe, const SensitivityRunOptions& options);

}  // namespace shrink::recipe
