// The zoo's model shape: `features` (conv part) → flatten → `classifier` (fully connected part).
#pragma once

#include <string>

#include "models/layer_stack.h"

namespace shrink::models {

// Parameter names follow the torchvision convention (features.0.weight, classifier.2.bias, ...);
// docs/models.md gives the equivalent PyTorch class, whose load_state_dict(strict=True) accepts
// shrink's .pth files.
class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(std::string arch);

  at::Tensor forward(at::Tensor x);
  const std::string& arch() const { return arch_; }

  LayerStack features{nullptr};
  LayerStack classifier{nullptr};

 private:
  std::string arch_;
};

TORCH_MODULE(Classifier);

}  // namespace shrink::models
