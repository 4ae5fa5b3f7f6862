// An nn.Sequential whose layers can be swapped in place, so quantizers can replace Linear/Conv2d.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <map>
#include <vector>

#include "models/max_pool_fusion.h"

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

  // With no overrides and no taps, a ReLU followed by a 2x2 max pooling runs as one fused kernel
  // (models/relu_max_pool.h): the same values and gradients in fewer passes; so does a layer with
  // MaxPoolFusion and such a pooling after it, past Identity layers. Every other layer runs as
  // run_layer runs it.
  at::Tensor forward(at::Tensor x);

  // Runs `fn` instead of layers [first, first + count) in forward, leaving the layers registered
  // (names and state unchanged). Quantizers observe, fake-quantize or fuse groups this way. Not
  // part of the state: whoever sets an override re-applies it after a rebuild.
  using SpanFn = std::function<at::Tensor(const at::Tensor&)>;
  void set_override(size_t first, size_t count, SpanFn fn);
  void clear_overrides() { overrides_.clear(); }
  // No overrides and no taps: forward is exactly the layers in order.
  bool plain() const { return overrides_.empty() && taps_.empty(); }
  // Layer `index` takes float input: a quantized one (a static int8 layer's output) is dequantized
  // before it runs. Static int8 marks the float layers it leaves after int8 ones (a bert's GELU).
  void dequantize_input(size_t index);
  bool dequantizes_input(size_t index) const { return index < dequantize_.size() && dequantize_[index]; }
  // Runs layer `index` alone (what an override calls to reach the original layers). Identity, and
  // Dropout in eval mode, hand x back without a call through the layer (two heap allocations
  // each); a 2x2 max pooling of a quint8 batch runs on shrink's kernel (runtime/int8_max_pool.h).
  at::Tensor run_layer(size_t index, at::Tensor x);

  // Calls `fn` with the output of layer `index` on every forward pass (models/feature_capture.h
  // names layers and collects them). A layer inside an override's span has no output of its own
  // there: only the span's last layer is tapped. Returns an id for remove_tap().
  using TapFn = std::function<void(const at::Tensor&)>;
  int64_t add_tap(size_t index, TapFn fn);
  void remove_tap(int64_t id);

 private:
  void tap(size_t index, const at::Tensor& x) const;
  bool fuses_with_next(size_t index) const;
  // The index of the 2x2 max pooling layer `index` (a MaxPoolFusion) runs with, or 0 for none.
  size_t max_pool_after(size_t index) const;
  // What run_layer may do instead of calling the layer.
  enum class Shortcut { kNone, kIdentity, kDropout, kMaxPool2x2 };
  static Shortcut shortcut_of(const torch::nn::AnyModule& layer);

  std::vector<torch::nn::AnyModule> layers_;
  std::vector<bool> fuse_with_next_;                       // layer i is a ReLU and layer i + 1 a 2x2 max pooling
  std::vector<bool> dequantize_;                           // layer i takes float input (dequantize_input)
  std::vector<Shortcut> shortcut_;                         // shortcut_of(layer i)
  std::vector<MaxPoolFusion*> pool_fusion_;                // layer i as a MaxPoolFusion, or null
  std::map<size_t, std::pair<size_t, SpanFn>> overrides_;  // first → (count, fn)
  std::map<int64_t, std::pair<size_t, TapFn>> taps_;       // id → (layer index, fn)
  int64_t next_tap_ = 0;
};

TORCH_MODULE(LayerStack);

}  // namespace shrink::models
