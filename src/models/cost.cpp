// count_cost: taps every weighted layer of the model's LayerStacks for one zero sample's pass.
#include "models/cost.h"

#include <torch/torch.h>

#include "models/feature_capture.h"

namespace shrink::models {

namespace {

// The layer's own weight: a parameter, or the buffer an int8 layer keeps it in.
at::Tensor weight_of(const torch::nn::Module& layer) {
  // The dicts outlive the lookups: find() points into them.
  const auto params = layer.named_parameters(/*recurse=*/false);
  if (const auto* p = params.find("weight")) return *p;
  const auto buffers = layer.named_buffers(/*recurse=*/false);
  if (const auto* b = buffers.find("weight")) return *b;
  return {};
}

c10::Device device_of(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) return b.device();
  return c10::kCPU;
}

}  // namespace

std::optional<ModelCost> count_cost(const Model& model, const std::vector<int64_t>& sample_shape) {
  const auto modules = model.module->named_modules();
  std::vector<std::string> names;
  std::vector<at::Tensor> weights;
  for (const auto& name : capturable_layers(model.module)) {
    const auto w = weight_of(*modules[name]);
    if (!w.defined() || (w.dim() != 2 && w.dim() != 4)) continue;
    names.push_back(name);
    weights.push_back(w);
  }
  if (names.empty()) return std::nullopt;
  FeatureCapture capture(model.module, names);
  {
    torch::NoGradGuard no_grad;
    const bool was_training = model.module->is_training();
    model.module->eval();
    try {
      model.forward(placeholder_input(model, batch_shape(1, sample_shape), device_of(*model.module)));
    } catch (...) {
      model.module->train(was_training);
      throw;
    }
    model.module->train(was_training);
  }
  ModelCost cost;
  for (size_t i = 0; i < names.size(); ++i) {
    const auto it = capture.outputs().find(names[i]);
    if (it == capture.outputs().end()) return std::nullopt;
    LayerCost l;
    l.name = names[i];
    l.weight_shape = weights[i].sizes().vec();
    l.weights = weights[i].numel();
    l.macs = it->second.numel() * (l.weights / weights[i].size(0));
    cost.macs += l.macs;
    cost.layers.push_back(std::move(l));
  }
  return cost;
}

}  // namespace shrink::models
