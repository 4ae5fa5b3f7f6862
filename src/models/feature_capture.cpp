// FeatureCapture: resolves dotted layer names to (LayerStack, index) and taps them.
#include "models/feature_capture.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"
#include "core/format.h"
#include "models/torchscript.h"

namespace shrink::models {

using core::cat;
using core::join;

std::vector<std::string> capturable_layers(const std::shared_ptr<torch::nn::Module>& root) {
  SHRINK_CHECK(root, "capturable_layers needs a module");
  std::vector<std::string> names;
  for (const auto& item : root->named_modules()) {
    const auto stack = std::dynamic_pointer_cast<LayerStackImpl>(item.value());
    if (!stack) continue;
    for (size_t i = 0; i < stack->size(); ++i) {
      names.push_back(item.key().empty() ? std::to_string(i) : cat(item.key(), ".", i));
    }
  }
  return names;
}

std::string capturable_layers_text(const std::shared_ptr<torch::nn::Module>& root, const std::string& whose) {
  const auto layers = capturable_layers(root);
  if (!layers.empty()) return cat(whose, " layers are: ", join(layers));
  return cat("no layer's output can be captured (",
             is_torchscript(*root) ? "a TorchScript module's submodules cannot be tapped; " : "",
             "layers held in LayerStacks can: the zoo's, or a registered architecture's)");
}

FeatureCapture::FeatureCapture(const std::shared_ptr<torch::nn::Module>& root, std::vector<std::string> names)
    : names_(std::move(names)) {
  SHRINK_CHECK(root, "FeatureCapture needs a module");
  const auto modules = root->named_modules();
  try {
    for (const auto& name : names_) {
      const auto dot = name.rfind('.');
      const std::string parent = dot == std::string::npos ? "" : name.substr(0, dot);
      const std::string index = dot == std::string::npos ? name : name.substr(dot + 1);
      std::shared_ptr<LayerStackImpl> stack;
      if (modules.contains(parent)) stack = std::dynamic_pointer_cast<LayerStackImpl>(modules[parent]);
      const bool numeric = !index.empty() && index.find_first_not_of("0123456789") == std::string::npos;
      if (!stack || !numeric || std::stoull(index) >= stack->size()) {
        throw core::UsageError(cat("no layer '", name, "' to capture; ", capturable_layers_text(root, "the model's")));
      }
      const auto id = stack->add_tap(std::stoull(index), [this, name](const at::Tensor& x) {
        outputs_[name] = x.is_quantized() ? x.dequantize() : x;
      });
      taps_.push_back({stack, id});
    }
  } catch (...) {
    for (auto& t : taps_) t.stack->remove_tap(t.id);
    throw;
  }
}

FeatureCapture::~FeatureCapture() {
  for (auto& t : taps_) t.stack->remove_tap(t.id);
}

const at::Tensor& FeatureCapture::at(const std::string& name) const {
  const auto it = outputs_.find(name);
  if (it != outputs_.end()) return it->second;
  if (std::find(names_.begin(), names_.end(), name) == names_.end()) {
    throw core::Error(cat("layer '", name, "' is not captured (captured: ", join(names_), ")"));
  }
  throw core::Error(cat("layer '", name, "' has no output recorded: either no forward pass ran since clear(), or ",
                        "the layer sits inside a group fused for quantization (Conv/Linear + BatchNorm + ReLU), ",
                        "which has one output only; capture the group's last layer"));
}

ForwardWithFeatures forward_with_features(Model& model, const at::Tensor& inputs,
                                          const std::vector<std::string>& names) {
  FeatureCapture capture(model.module, names);
  ForwardWithFeatures out;
  out.logits = model.forward(inputs);
  for (const auto& name : names) out.features[name] = capture.at(name);
  return out;
}

}  // namespace shrink::models
