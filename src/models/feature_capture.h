// Named intermediate outputs: the outputs of chosen layers, recorded during a model's own forward
// pass (no second pass), for feature distillation and for inspecting activations.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/layer_stack.h"
#include "models/model.h"

namespace shrink::models {

// The dotted names of every layer that can be captured: each layer of each LayerStack in the
// module tree ("features.3", "classifier.1", "features.4.body.0"), in module order. Zoo models
// hold all their layers in LayerStacks; a user's model opts in the same way.
std::vector<std::string> capturable_layers(const std::shared_ptr<torch::nn::Module>& root);
// For errors about a layer name: "<whose> layers are: ..." or why the model has none to capture.
std::string capturable_layers_text(const std::shared_ptr<torch::nn::Module>& root, const std::string& whose);

// Records the outputs of the named layers on every forward pass of `root` while it lives (its
// destructor detaches it). Outputs keep their autograd history, so a loss on them trains the
// model; quantized outputs are dequantized.
class FeatureCapture {
 public:
  FeatureCapture(const std::shared_ptr<torch::nn::Module>& root, std::vector<std::string> names);
  ~FeatureCapture();
  FeatureCapture(const FeatureCapture&) = delete;
  FeatureCapture& operator=(const FeatureCapture&) = delete;

  const std::vector<std::string>& names() const { return names_; }
  // The output of `name` in the latest forward pass since clear().
  const at::Tensor& at(const std::string& name) const;
  const std::map<std::string, at::Tensor>& outputs() const { return outputs_; }
  // Drops the recorded outputs (and the autograd graph they hold).
  void clear() { outputs_.clear(); }

 private:
  struct Tap {
    std::shared_ptr<LayerStackImpl> stack;
    int64_t id;
  };
  std::vector<std::string> names_;
  std::vector<Tap> taps_;
  std::map<std::string, at::Tensor> outputs_;
};

struct ForwardWithFeatures {
  at::Tensor logits;
  std::map<std::string, at::Tensor> features;
};

// One forward pass of `model`, returning the logits and the outputs of the named layers.
ForwardWithFeatures forward_with_features(Model& model, const at::Tensor& inputs,
                                          const std::vector<std::string>& names);

}  // namespace shrink::models
