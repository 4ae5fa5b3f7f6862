// Sensitivity analysis: prune each selected tensor (or, for channels, each layer's output channels)
// alone at a sweep of sparsities, without fine-tuning, and measure accuracy, to see which layers
// tolerate pruning.
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "compress/prune/l1_pruner.h"
#include "data/dataset.h"
#include "train/metrics.h"

namespace shrink::compress::prune {

struct SensitivityPoint {
  std::string tensor;  // channels: the layer ("features.0")
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

// `selection` picks the tensors (include/exclude as for pruning) and the structure: weights
// (each tensor's smallest |w|) or channels (each removable layer's channels of smallest L1/L2
// filter norm masked with its BatchNorm's, as the pruner masks them; one channel always kept).
// Levels must be in [0, 1). The module's tensors are restored after each measurement.
SensitivityResult analyze_sensitivity(torch::nn::Module& module, const models::ForwardFn& forward,
                                      const data::Dataset& data, const PruneOptions& selection,
                                      const std::vector<double>& levels, bool progress = true);

}  // namespace shrink::compress::prune
