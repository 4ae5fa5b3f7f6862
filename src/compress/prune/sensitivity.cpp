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
  if (selection.structure() == PruneStructure::kNM) {
    throw core::UsageError("sensitivity sweeps sparsity levels: structure weights or channels, not n:m");
  }
  const bool channels = selection.structure() == PruneStructure::kChannels;
  SensitivityResult r;
  r.levels = levels;
  auto params = module.named_parameters();
  // What each swept unit masks: a tensor alone, or a channel group's producers and followers.
  std::vector<std::vector<std::string>> masked;
  std::vector<at::Tensor> scores;  // channels: each group's, from the dense weights
  if (channels) {
    for (const auto& g : select_channels(module, selection).groups) {
      r.tensors.push_back(g.name());
      masked.push_back(channel_tensors(g, module));
      std::vector<at::Tensor> weights;
      for (const auto& p : g.producers) weights.push_back(params[p + ".weight"]);
      scores.push_back(channel_scores(weights, selection.method()));
    }
  } else {
    r.tensors = select_parameters(module, selection);
    for (const auto& name : r.tensors) masked.push_back({name});
  }
  const auto base = train::evaluate(module, forward, data);
  r.baseline_accuracy = base.accuracy;
  r.baseline_loss = base.loss;
  core::ProgressBar bar("sensitivity", static_cast<int64_t>(r.tensors.size() * levels.size()), progress);
  int64_t done = 0;
  for (size_t u = 0; u < r.tensors.size(); ++u) {
    std::vector<at::Tensor> originals;
    for (const auto& name : masked[u]) originals.push_back(params[name].detach().clone());
    for (double level : levels) {
      {
        torch::NoGradGuard no_grad;
        if (channels) {
          // The producers' filters ranked by norm; the lowest `level` of them zero everywhere they go.
          const auto keep = channel_keep(scores[u], entries_to_prune(level, scores[u].numel()));
          for (const auto& name : masked[u]) {
            auto t = params[name];
            std::vector<int64_t> shape(static_cast<size_t>(t.dim()), 1);
            shape[0] = t.size(0);
            t.mul_(keep.to(t.scalar_type()).reshape(shape));
          }
        } else {
          params[masked[u].front()].mul_(l1_mask(originals.front(), level));
        }
      }
      const auto e = train::evaluate(module, forward, data);
      r.points.push_back({r.tensors[u], level, e.accuracy, e.loss});
      {
        torch::NoGradGuard no_grad;
        for (size_t i = 0; i < masked[u].size(); ++i) params[masked[u][i]].copy_(originals[i]);
      }
      bar.update(++done, [&] { return r.tensors[u]; });
    }
  }
  bar.finish("");
  return r;
}

}  // namespace shrink::compress::prune
