// Per-tensor pruning sweeps with weight restore.
#include "compress/prune/sensitivity.h"

#include <torch/torch.h>

#include "compress/prune/magnitude.h"
#include "core/error.h"
#include "core/progress.h"

namespace shrink::compress::prune {

SensitivityResult analyze_sensitivity(torch::nn::Module& module, const models::ForwardFn& forward,
                                      const data::Dataset& data, const PruneOptions& selection,
                                      const std::vector<double>& levels, bool progress) {
  SHRINK_CHECK(!levels.empty(), "sensitivity needs at least one level");
  for (double l : levels) {
    if (l < 0 || l >= 1) throw core::UsageError(core::cat("sensitivity levels must be in [0, 1), got ", l));
  }
  SensitivityResult r;
  r.levels = levels;
  r.tensors = select_parameters(module, selection);
  const auto base = train::evaluate(module, forward, data);
  r.baseline_accuracy = base.accuracy;
  r.baseline_loss = base.loss;
  auto params = module.named_parameters();
  core::ProgressBar bar("sensitivity", static_cast<int64_t>(r.tensors.size() * levels.size()), progress);
  int64_t done = 0;
  for (const auto& name : r.tensors) {
    auto w = params[name];
    const auto original = w.detach().clone();
    for (double level : levels) {
      {
        torch::NoGradGuard no_grad;
        w.mul_(l1_mask(original, level));
      }
      const auto e = train::evaluate(module, forward, data);
      r.points.push_back({name, level, e.accuracy, e.loss});
      {
        torch::NoGradGuard no_grad;
        w.copy_(original);
      }
      bar.update(++done, [&] { return name; });
    }
  }
  bar.finish("");
  return r;
}

}  // namespace shrink::compress::prune
