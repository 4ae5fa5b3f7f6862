// Runs a loaded recipe stage by stage: evaluates, measures and exports after each, keeps the report
// current, and resumes an interrupted run.
#pragma once

#include <filesystem>
#include <memory>

#include "dist/process_group.h"
#include "recipe/recipe.h"
#include "report/report.h"

namespace shrink::recipe {

struct RunOptions {
  std::filesystem::path out_dir;
  // Skip stages an earlier run of the same effective recipe completed, and continue the
  // interrupted one from its last checkpoint.
  bool resume = false;
  // Clear a folder holding an earlier run (and only a run) before starting; without it, or
  // `resume`, such a folder is refused.
  bool force = false;
  bool progress = true;
  // Data-parallel: every rank runs the recipe; training stages split their batches over the
  // group, and only rank 0 measures, exports and writes (the folder, the report, checkpoints).
  std::shared_ptr<dist::ProcessGroup> group;
};

report::Report run_recipe(const Recipe& recipe, const RunOptions& options);

}  // namespace shrink::recipe
