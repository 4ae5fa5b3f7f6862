// Which output channels can be pruned whole and removed, and the removal itself: the dependency
// analysis over a model's LayerStacks (a producer's channels through BatchNorm, activations,
// pooling and depthwise convolutions to the layer that reads them) and the resize of every layer
// a channel group touches.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::compress::prune {

// The output channels of one Conv2d or Linear (the producer), pruned together with the channels
// of the layers they pass through (followers: BatchNorm, depthwise Conv2d) and removed from the
// input of the layer that reads them (the consumer). Layers are named as in the module tree
// ("features.0", "features.3.body.0", "classifier.0").
struct ChannelGroup {
  std::string producer;
  int64_t channels = 0;
  std::vector<std::string> followers;
  std::string consumer;
  // The consumer's input features per channel: 1, or H × W when a Linear reads the flattened
  // feature map (channel c is features [c × H × W, (c + 1) × H × W)).
  int64_t consumer_group = 1;
};

// A Conv2d or Linear whose output channels cannot be removed, and why.
inline constexpr const char* kModelOutputs = "its outputs are the model's outputs";
struct SkippedLayer {
  std::string layer;
  std::string reason;
};

struct ChannelGraph {
  std::vector<ChannelGroup> groups;  // in module order
  std::vector<SkippedLayer> skipped;
};

// Walks each LayerStack of `root` (the zoo's Classifier links its `features` to its `classifier`
// through the flatten between them). A producer's channels may pass through BatchNorm (affine),
// depthwise Conv2d, activations that keep zero at zero (ReLU, ReLU6, LeakyReLU, GELU, SiLU, Tanh,
// ELU, Hardtanh), pooling, Dropout, Identity and Flatten; a pruned channel is then exactly zero
// where the consumer reads it, so removing it changes nothing. Anything else on the way (a
// residual add, a custom module, the model's output) skips the producer with the reason.
ChannelGraph channel_graph(const torch::nn::Module& root);

// A group with the channels it keeps (ascending).
struct ChannelRemoval {
  ChannelGroup group;
  std::vector<int64_t> kept;
};

// Replaces every layer the removals touch by a smaller one of the same kind holding the kept
// channels' weights (producers' and followers' outputs, consumers' inputs), on the same device and
// dtype and in the same mode. Layers must still have the sizes the groups were found with.
void remove_channels(torch::nn::Module& root, const std::vector<ChannelRemoval>& removals);

// The transform kind (models/restore.h) that re-applies a removal to a rebuilt model.
inline constexpr const char* kChannelTransform = "prune_channels";
nlohmann::json to_json(const std::vector<ChannelRemoval>& removals);
std::vector<ChannelRemoval> removals_from_json(const nlohmann::json& j);

}  // namespace shrink::compress::prune
