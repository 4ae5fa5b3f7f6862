// What a model costs to run: multiply-adds and weights of each layer with a weight, counted on one
// sample's forward pass (the figures FLOP targets and the report's FLOPs column use).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/model.h"

namespace shrink::models {

struct LayerCost {
  std::string name;                   // the layer ("features.0", "features.3.body.0")
  std::vector<int64_t> weight_shape;  // [out, in / groups, kh, kw] or [out, in]
  int64_t macs = 0;                   // multiply-adds for one sample
  int64_t weights = 0;                // entries of its weight
};

struct ModelCost {
  std::vector<LayerCost> layers;  // in module order
  int64_t macs = 0;               // their sum
  // FLOPs as the pruning literature counts them: two per multiply-add.
  int64_t flops() const { return 2 * macs; }
};

// Counts every layer of the model's LayerStacks whose weight (a parameter or an int8 layer's
// buffer) has rank 2 (Linear: output elements × in) or 4 (Conv2d: output elements × in / groups ×
// kh × kw), running one placeholder sample of `sample_shape` through the model in eval mode. Biases,
// normalisation, activations and pooling are not counted: they are a rounding error beside these.
// nullopt when the model holds no such layer in a LayerStack (a TorchScript module), or when one
// had no output of its own in the pass (it ran inside a fused span).
std::optional<ModelCost> count_cost(const Model& model, const std::vector<int64_t>& sample_shape);

}  // namespace shrink::models
