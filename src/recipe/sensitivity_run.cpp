// Sensitivity job: weights lookup, data, the library sweep, and the JSON/report outputs.
#include "recipe/sensitivity_run.h"

#include "compress/prune/sensitivity.h"
#include "compress/quantize/quantization_summary.h"
#include "core/atomic_file.h"
#include "core/device.h"
#include "core/error.h"
#include "core/folder_lock.h"
#include "core/threads.h"
#include "models/restore.h"
#include "report/model_bench.h"
#include "report/report.h"

namespace shrink::recipe {

namespace fs = std::filesystem;
using core::cat;

report::Sensitivity run_sensitivity(const Recipe& recipe, const SensitivityRunOptions& o) {
  auto fallback = recipe.model(o.model);
  // It reads a run's report and adds to its folder, so no run may be writing there meanwhile.
  const core::FolderLock lock(o.out_dir);
  const fs::path report_path = o.out_dir / "report.json";
  const bool have_report = fs::exists(report_path);
  report::Report rep;
  if (have_report) rep = report::read_report(report_path);
  fs::path weights = o.weights;
  if (weights.empty()) {
    // Pruning sensitivity needs float weights: an int8 stage's file has none to prune.
    for (const auto& s : rep.stages) {
      if (s.model == o.model && !s.artifacts.empty() && !s.section<compress::quantize::QuantizationSummary>()) {
        weights = o.out_dir / report::bench_artifact(s.artifacts);
      }
    }
    if (weights.empty()) {
      throw core::UsageError(cat("no trained weights for '", o.model, "' in ", o.out_dir.string(),
                                 ": run the recipe first (shrink run ", recipe.path.string(),
                                 ") or pass --weights FILE"));
    }
  }

  core::configure_threads(static_cast<int>(recipe.threads));
  const c10::Device device = core::resolve_device(recipe.device);
  // Validation data keeps layer choices from being tuned on the test set; it is drawn from the
  // train split, which is read only then.
  data::Dataset scored;
  bool use_val = false;
  int64_t classes = 0;
  if (recipe.data.val_split > 0) {
    auto splits = data::load_splits(recipe.data);
    use_val = splits.val.size() > 0;
    classes = splits.train.num_classes();
    scored = use_val ? std::move(splits.val) : std::move(splits.test);
  } else {
    // As `shrink eval` does: the test split alone.
    scored = data::load_test_split(recipe.data);
    classes = scored.num_classes();
  }
  fallback.input = {scored.sample_shape(), classes};
  const auto model = models::restore_model(weights, &fallback).model;
  model.module->to(device);
  const auto r = compress::prune::analyze_sensitivity(
      *model.module, model.forward, scored.to(device),
      compress::prune::PruneOptions().include(o.include).structure(o.structure).method(o.method).residual(o.residual),
      o.levels, o.progress);

  report::Sensitivity result;
  result.weights = weights.string();
  result.split = use_val ? "validation" : "test";
  result.structure = core::name_of(o.structure);
  result.baseline_accuracy = r.baseline_accuracy;
  result.levels = o.levels;
  for (const auto& pt : r.points) {
    if (result.tensors.empty() || result.tensors.back().first != pt.tensor)
      result.tensors.emplace_back(pt.tensor, std::vector<double>{});
    result.tensors.back().second.push_back(pt.accuracy);
  }
  core::write_text_atomically(o.out_dir / ("sensitivity-" + o.model + ".json"), report::to_json(result).dump(2) + "\n");
  if (have_report) {
    rep.sensitivity[o.model] = result;
    report::write_report(o.out_dir, rep);
  }
  return result;
}

}  // namespace shrink::recipe
