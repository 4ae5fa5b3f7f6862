// LayerStack: ordered layers with in-place replacement.
#include "models/layer_stack.h"

#include "core/error.h"

namespace shrink::models {

void LayerStackImpl::push_back_any(torch::nn::AnyModule layer) {
  register_module(std::to_string(layers_.size()), layer.ptr());
  layers_.push_back(std::move(layer));
}

void LayerStackImpl::replace(size_t index, torch::nn::AnyModule layer) {
  SHRINK_CHECK(index < layers_.size(), "layer index ", index, " out of range: the stack has ", layers_.size(),
               " layers");
  replace_module(std::to_string(index), layer.ptr());
  layers_[index] = std::move(layer);
}

std::shared_ptr<torch::nn::Module> LayerStackImpl::ptr(size_t index) const {
  SHRINK_CHECK(index < layers_.size(), "layer index ", index, " out of range: the stack has ", layers_.size(),
               " layers");
  return layers_[index].ptr();
}

at::Tensor LayerStackImpl::forward(at::Tensor x) {
  for (auto& layer : layers_) x = layer.forward(std::move(x));
  return x;
}

}  // namespace shrink::models
