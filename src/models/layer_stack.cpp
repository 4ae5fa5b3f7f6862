// LayerStack: ordered layers with in-place replacement.
#include "models/layer_stack.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <typeinfo>

#include "core/error.h"
#include "runtime/int8_max_pool.h"
#include "runtime/relu_max_pool.h"

namespace shrink::models {

void LayerStackImpl::push_back_any(torch::nn::AnyModule layer) {
  register_module(std::to_string(layers_.size()), layer.ptr());
  layers_.push_back(std::move(layer));
  // Only the pair the new layer closes can change: building a stack stays linear in its length.
  fuse_with_next_.push_back(false);
  dequantize_.push_back(false);
  shortcut_.push_back(shortcut_of(layers_.back()));
  pool_fusion_.push_back(dynamic_cast<MaxPoolFusion*>(layers_.back().ptr().get()));
  if (layers_.size() >= 2) fuse_with_next_[layers_.size() - 2] = fuses_with_next(layers_.size() - 2);
}

void LayerStackImpl::replace(size_t index, torch::nn::AnyModule layer) {
  SHRINK_CHECK(index < layers_.size(), "layer index ", index, " out of range: the stack has ", layers_.size(),
               " layers");
  replace_module(std::to_string(index), layer.ptr());
  layers_[index] = std::move(layer);
  shortcut_[index] = shortcut_of(layers_[index]);
  pool_fusion_[index] = dynamic_cast<MaxPoolFusion*>(layers_[index].ptr().get());
  if (index > 0) fuse_with_next_[index - 1] = fuses_with_next(index - 1);
  fuse_with_next_[index] = fuses_with_next(index);
}

bool LayerStackImpl::fuses_with_next(size_t i) const {
  if (i + 1 >= layers_.size()) return false;
  const auto pool = std::dynamic_pointer_cast<torch::nn::MaxPool2dImpl>(layers_[i + 1].ptr());
  return std::dynamic_pointer_cast<torch::nn::ReLUImpl>(layers_[i].ptr()) && pool &&
         runtime::is_max_pool2x2(pool->options);
}

LayerStackImpl::Shortcut LayerStackImpl::shortcut_of(const torch::nn::AnyModule& layer) {
  // The exact types: a subclass may have a forward of its own.
  const auto& m = *layer.ptr();
  if (typeid(m) == typeid(torch::nn::IdentityImpl)) return Shortcut::kIdentity;
  if (typeid(m) == typeid(torch::nn::DropoutImpl)) return Shortcut::kDropout;
  if (typeid(m) != typeid(torch::nn::MaxPool2dImpl)) return Shortcut::kNone;
  return runtime::is_max_pool2x2(dynamic_cast<const torch::nn::MaxPool2dImpl&>(m).options) ? Shortcut::kMaxPool2x2
                                                                                           : Shortcut::kNone;
}

size_t LayerStackImpl::max_pool_after(size_t i) const {
  if (!pool_fusion_[i]) return 0;
  for (size_t j = i + 1; j < layers_.size() && !dequantize_[j]; ++j) {
    if (shortcut_[j] == Shortcut::kMaxPool2x2) return j;
    if (shortcut_[j] != Shortcut::kIdentity) return 0;
  }
  return 0;
}

std::shared_ptr<torch::nn::Module> LayerStackImpl::ptr(size_t index) const {
  SHRINK_CHECK(index < layers_.size(), "layer index ", index, " out of range: the stack has ", layers_.size(),
               " layers");
  return layers_[index].ptr();
}

at::Tensor LayerStackImpl::forward(at::Tensor x) {
  if (overrides_.empty() && taps_.empty()) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (dequantize_[i] && x.is_quantized()) x = x.dequantize();
      if (fuse_with_next_[i]) {
        x = runtime::relu_max_pool2x2(x);
        ++i;
        continue;
      }
      if (const size_t pool = max_pool_after(i)) {
        auto y = pool_fusion_[i]->forward_max_pool2x2(x);
        if (y.defined()) {
          x = std::move(y);
          i = pool;
          continue;
        }
      }
      x = run_layer(i, std::move(x));
    }
    return x;
  }
  for (size_t i = 0; i < layers_.size();) {
    const auto it = overrides_.find(i);
    if (it == overrides_.end()) {
      x = run_layer(i, std::move(x));
      ++i;
    } else {
      x = it->second.second(x);
      i += it->second.first;
    }
    tap(i - 1, x);
  }
  return x;
}

void LayerStackImpl::tap(size_t index, const at::Tensor& x) const {
  for (const auto& [id, t] : taps_) {
    if (t.first == index) t.second(x);
  }
}

int64_t LayerStackImpl::add_tap(size_t index, TapFn fn) {
  SHRINK_CHECK(index < layers_.size(), "layer index ", index, " out of range: the stack has ", layers_.size(),
               " layers");
  taps_[next_tap_] = {index, std::move(fn)};
  return next_tap_++;
}

void LayerStackImpl::remove_tap(int64_t id) { taps_.erase(id); }

void LayerStackImpl::set_override(size_t first, size_t count, SpanFn fn) {
  SHRINK_CHECK(count > 0 && first + count <= layers_.size(), "override of layers [", first, ", ", first + count,
               ") out of range: the stack has ", layers_.size(), " layers");
  for (const auto& [start, span] : overrides_) {
    if (start != first && first < start + span.first && start < first + count) {
      throw core::Error(core::cat("override of layers [", first, ", ", first + count, ") overlaps the one at [", start,
                                  ", ", start + span.first, ")"));
    }
  }
  overrides_[first] = {count, std::move(fn)};
}

void LayerStackImpl::dequantize_input(size_t index) {
  SHRINK_CHECK(index < layers_.size(), "layer index ", index, " out of range: the stack has ", layers_.size(),
               " layers");
  dequantize_[index] = true;
}

at::Tensor LayerStackImpl::run_layer(size_t index, at::Tensor x) {
  SHRINK_CHECK(index < layers_.size(), "layer index ", index, " out of range: the stack has ", layers_.size(),
               " layers");
  if (dequantize_[index] && x.is_quantized()) x = x.dequantize();
  switch (shortcut_[index]) {
    case Shortcut::kIdentity:
      return x;
    case Shortcut::kDropout:
      if (!layers_[index].ptr()->is_training()) return x;
      break;
    case Shortcut::kMaxPool2x2:
      if (runtime::int8_max_pool2x2_applies(x)) return runtime::int8_max_pool2x2(x);
      break;
    case Shortcut::kNone:
      break;
  }
  return layers_[index].forward(std::move(x));
}

}  // namespace shrink::models
