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

#include "core/enum_names.h"

namespace shrink::compress::prune {

// A layer that reads a group's channels: its input channels (Conv2d) or features (Linear) shrink.
struct ChannelConsumer {
  std::string layer;
  // Input features per channel: 1, or H × W when a Linear reads the flattened feature map
  // (channel c is features [c × H × W, (c + 1) × H × W)).
  int64_t group = 1;
};
inline bool operator==(const ChannelConsumer& a, const ChannelConsumer& b) {
  return a.layer == b.layer && a.group == b.group;
}

// The output channels of one Conv2d or Linear (the producer), pruned together with the channels
// of the layers they pass through (followers: BatchNorm, depthwise Conv2d) and removed from the
// input of the layers that read them (consumers). Channels a residual add joins form one group
// with several producers (the stem, each block's last conv, a projection shortcut) and consumers
// (each block's first conv and projection, the head); channel c is then one channel of the
// residual stream, removed from all of them at once. Layers are named as in the module tree
// ("features.0", "features.3.body.0", "classifier.0").
struct ChannelGroup {
  std::vector<std::string> producers;  // in module order; the first names the group
  int64_t channels = 0;
  std::vector<std::string> followers;
  std::vector<ChannelConsumer> consumers;

  const std::string& name() const { return producers.front(); }
};

// What happens to the channels a residual add joins: whole leaves the residual stream's width as
// it is (Li et al. 2017 prune ResNets so: each block's inner channels only); together prunes a
// channel of the stream in every layer that writes or reads it.
enum class ResidualChannels { kWhole, kTogether };
inline const core::EnumNames<ResidualChannels>& enum_names(ResidualChannels) {
  static const core::EnumNames<ResidualChannels> names{{ResidualChannels::kWhole, "whole"},
                                                       {ResidualChannels::kTogether, "together"}};
  return names;
}

// A Conv2d or Linear whose output channels cannot be removed, and why.
inline constexpr const char* kModelOutputs = "its outputs are the model's outputs";
struct SkippedLayer {
  std::string layer;
  std::string reason;
  bool residual = false;  // left whole because residual: whole asks it
};

struct ChannelGraph {
  std::vector<ChannelGroup> groups;  // in module order
  std::vector<SkippedLayer> skipped;
};

// Walks each LayerStack of `root` (the zoo's Classifier links its `features` to its `classifier`
// through the flatten between them; a ResidualBlock's body and shortcut meet at its add). A
// producer's channels may pass through BatchNorm (affine), depthwise Conv2d, activations that keep
// zero at zero (ReLU, ReLU6, LeakyReLU, GELU, SiLU, Tanh, ELU, Hardtanh), pooling, Dropout, Identity
// and Flatten; a pruned channel is then exactly zero where the consumer reads it, so removing it
// changes nothing. With `residual` together, a channel pruned in every producer of a residual
// stream is zero in the stream too (0 + 0, and the add's ReLU keeps it there), so the streams'
// groups are found as well. Anything else on the way (a residual add under whole, a custom module,
// the model's output) skips every producer of the group with the reason.
ChannelGraph channel_graph(const torch::nn::Module& root, ResidualChannels residual = ResidualChannels::kWhole);

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
// Reads what to_json writes, and the one-producer, one-consumer groups of files written before
// residual channels could be joined ("producer", "consumer", "consumer_group").
std::vector<ChannelRemoval> removals_from_json(const nlohmann::json& j);

}  // namespace shrink::compress::prune
