// Sensitivity analysis: prune each selected tensor alone at a sweep of sparsities, without
// fine-tuning, and measure accuracy, to see which layers tolerate pruning.
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "compress/prune/l1_pruner.h"
#include "data/dataset.h"
#include "train/metrics.h"

namespace shrink::compress::prune {

struct SensitivityPoint {
  std::string tensor;
  double sparsity = 0.0;
  double accuracy = 0.0;
  double loss = 0.0;
};

struct SensitivityResult {
  double baseline_accuracy = 0.0;
  double baseline_loss = 0.0;
  std::vector<std::string> tensors;
  std::vector<double> levels;
  std::vector<SensitivityPoint> points;  // tensor-major, levels in order
};

// `selection` picks the tensors (include/exclude as for pruning); levels must be in [0, 1).
// The module's weights are restored after each measurement.
SensitivityResult analyze_sensitivity(torch::nn::Module& module, const models::ForwardFn& forward,
                                      const data::Dataset& data, const PruneOptions& selection,
                                      const std::vector<double>& levels, bool progress = true);

}  // namespace shrink::compress::prune
