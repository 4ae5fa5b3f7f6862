// An nn.Sequential whose layers can be swapped in place, so quantizers can replace Linear/Conv2d.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

#include <vector>

namespace shrink::models {

// Layers are registered under their index ("0", "1", ...) exactly as torch.nn.Sequential names
// them, so parameter names match the equivalent PyTorch model. Unlike LibTorch's Sequential (and
// unlike Module::replace_module, which leaves the forward path pointing at the old layer),
// replace() updates the module tree and the forward path together.
class LayerStackImpl : public torch::nn::Module {
 public:
  LayerStackImpl() = default;

  template <class ModuleHolder>
  void push_back(ModuleHolder layer) {
    push_back_any(torch::nn::AnyModule(std::move(layer)));
  }
  void push_back_any(torch::nn::AnyModule layer);
  void replace(size_t index, torch::nn::AnyModule layer);

  size_t size() const { return layers_.size(); }
  std::shared_ptr<torch::nn::Module> ptr(size_t index) const;
  // The layer as a concrete type, or nullptr when it is something else.
  template <class ModuleImpl>
  std::shared_ptr<ModuleImpl> as(size_t index) const {
    return std::dynamic_pointer_cast<ModuleImpl>(ptr(index));
  }

  at::Tensor forward(at::Tensor x);

 private:
  std::vector<torch::nn::AnyModule> layers_;
};

TORCH_MODULE(LayerStack);

}  // namespace shrink::models
