// Channel dependency analysis over LayerStacks, and the resize of the layers a removal touches.
#include "compress/prune/channel_graph.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>

#include "core/error.h"
#include "core/registration.h"
#include "models/classifier.h"
#include "models/layer_stack.h"
#include "models/residual_block.h"
#include "models/restore.h"

namespace shrink::compress::prune {

namespace nn = torch::nn;
using core::cat;
using nlohmann::json;

namespace {

std::string child(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : cat(parent, ".", name);
}

template <class Impl>
bool is(const std::shared_ptr<nn::Module>& m) {
  return static_cast<bool>(std::dynamic_pointer_cast<Impl>(m));
}

// Zero in, zero out, channel by channel: a pruned channel stays exactly zero through these.
bool keeps_zero_channelwise(const std::shared_ptr<nn::Module>& m) {
  return is<nn::ReLUImpl>(m) || is<nn::ReLU6Impl>(m) || is<nn::LeakyReLUImpl>(m) || is<nn::GELUImpl>(m) ||
         is<nn::SiLUImpl>(m) || is<nn::TanhImpl>(m) || is<nn::ELUImpl>(m) || is<nn::HardtanhImpl>(m) ||
         is<nn::MaxPool2dImpl>(m) || is<nn::AvgPool2dImpl>(m) || is<nn::AdaptiveAvgPool2dImpl>(m) ||
         is<nn::AdaptiveMaxPool2dImpl>(m) || is<nn::MaxPool1dImpl>(m) || is<nn::AvgPool1dImpl>(m) ||
         is<nn::DropoutImpl>(m) || is<nn::Dropout2dImpl>(m) || is<nn::IdentityImpl>(m);
}

bool is_depthwise(const nn::Conv2dImpl& conv) {
  return conv.options.groups() > 1 && conv.options.groups() == conv.options.in_channels() &&
         conv.options.groups() == conv.options.out_channels();
}

// A BatchNorm's options and tensors, whichever its rank.
struct Norm {
  bool affine = false;
  int64_t features = 0;
};
std::optional<Norm> norm_of(const std::shared_ptr<nn::Module>& m) {
  if (const auto bn = std::dynamic_pointer_cast<nn::BatchNorm2dImpl>(m))
    return Norm{bn->options.affine(), bn->options.num_features()};
  if (const auto bn = std::dynamic_pointer_cast<nn::BatchNorm1dImpl>(m))
    return Norm{bn->options.affine(), bn->options.num_features()};
  return std::nullopt;
}

std::string type_name(const nn::Module& m) { return m.name(); }

// The channels one tensor carries, with the layers found to write (producers, followers) and read
// them (consumers); a residual add merges the spaces it sums (union-find), and the first reason
// found not to remove a space's channels stands for all of it.
struct Space {
  int64_t channels = 0;
  std::vector<std::pair<size_t, std::string>> producers;  // (module order, layer)
  std::vector<std::string> followers;
  std::vector<ChannelConsumer> consumers;
  std::string why_not;
  bool residual = false;  // why_not is residual: whole
  size_t parent = 0;
};

// "features.3" → ("features", 3); the index is SIZE_MAX when the last part is not a number.
std::pair<std::string, size_t> parent_and_index(const std::string& path) {
  const auto dot = path.rfind('.');
  const std::string index = dot == std::string::npos ? path : path.substr(dot + 1);
  if (index.empty() || index.size() > 18 || index.find_first_not_of("0123456789") != std::string::npos) {
    return {"", SIZE_MAX};
  }
  return {dot == std::string::npos ? "" : path.substr(0, dot), std::stoull(index)};
}

struct Walker {
  const nn::Module& root;
  ResidualChannels residual;
  std::map<std::string, std::shared_ptr<models::LayerStackImpl>> stacks;
  // A Classifier's features run on into its classifier through a flatten.
  std::map<std::string, std::string> flattens_into;
  std::map<std::string, std::string> blocks;  // a ResidualBlock's body / shortcut → the block
  std::set<std::string> outputs;              // stacks whose output is the model's
  std::vector<Space> spaces;
  std::map<std::string, size_t> block_outputs;  // a ResidualBlock → the space of its output

  Walker(const nn::Module& r, ResidualChannels res) : root(r), residual(res) {
    if (dynamic_cast<const models::LayerStackImpl*>(&root)) outputs.insert("");
    for (const auto& item : root.named_modules()) {
      if (auto stack = std::dynamic_pointer_cast<models::LayerStackImpl>(item.value())) stacks[item.key()] = stack;
      if (std::dynamic_pointer_cast<models::ClassifierImpl>(item.value())) {
        flattens_into[child(item.key(), "features")] = child(item.key(), "classifier");
        if (item.key().empty()) outputs.insert("classifier");
      }
      if (std::dynamic_pointer_cast<models::ResidualBlockImpl>(item.value())) {
        blocks[child(item.key(), "body")] = item.key();
        blocks[child(item.key(), "shortcut")] = item.key();
      }
    }
  }

  size_t space(int64_t channels) {
    spaces.push_back({});
    spaces.back().channels = channels;
    spaces.back().parent = spaces.size() - 1;
    return spaces.size() - 1;
  }
  size_t find(size_t s) {
    while (spaces[s].parent != s) s = spaces[s].parent = spaces[spaces[s].parent].parent;
    return s;
  }
  void fail(size_t s, std::string why, bool residual_whole = false) {
    auto& sp = spaces[find(s)];
    if (!sp.why_not.empty()) return;
    sp.why_not = std::move(why);
    sp.residual = residual_whole;
  }
  void join(size_t a, size_t b, const std::string& block) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    if (spaces[a].channels != spaces[b].channels) {
      fail(a,
           cat("the residual add in '", block, "' sums ", spaces[a].channels, " channels with ", spaces[b].channels));
    }
    auto& to = spaces[a];
    auto& from = spaces[b];
    to.producers.insert(to.producers.end(), from.producers.begin(), from.producers.end());
    to.followers.insert(to.followers.end(), from.followers.begin(), from.followers.end());
    to.consumers.insert(to.consumers.end(), from.consumers.begin(), from.consumers.end());
    if (to.why_not.empty()) {
      to.why_not = from.why_not;
      to.residual = from.residual;
    }
    from.parent = a;
  }

  // The space a ResidualBlock's add writes, followed on through the stack that holds the block.
  size_t block_output(const std::string& block) {
    if (const auto known = block_outputs.find(block); known != block_outputs.end()) return known->second;
    const auto body = stacks.at(child(block, "body"));
    int64_t channels = 0;
    for (size_t j = 0; j < body->size(); ++j) {
      if (const auto conv = std::dynamic_pointer_cast<nn::Conv2dImpl>(body->ptr(j)))
        channels = conv->options.out_channels();
    }
    const auto s = space(channels);
    block_outputs[block] = s;
    const auto [parent, index] = parent_and_index(block);
    if (channels == 0) {
      fail(s, cat("the residual block '", block, "' has no Conv2d in its body"));
    } else if (!stacks.count(parent) || index >= stacks.at(parent)->size()) {
      fail(s, cat("the residual block '", block, "' is not a layer of a LayerStack"));
    } else {
      flow(parent, index + 1, s, true);
    }
    return s;
  }

  // Follows the channels of space `s` from (stack, start) to the layers that read them, adding
  // followers and consumers to it or saying why not.
  void flow(const std::string& stack_path, size_t start, size_t s, bool spatial) {
    std::string path = stack_path;
    auto stack = stacks.at(path);
    bool flattened = false;
    for (size_t j = start;; ++j) {
      if (j >= stack->size()) {
        const auto next = flattens_into.find(path);
        if (next != flattens_into.end() && stacks.count(next->second)) {
          path = next->second;
          stack = stacks.at(path);
          flattened = true;
          j = static_cast<size_t>(-1);  // the loop's ++j starts the next stack at 0
          continue;
        }
        if (const auto block = blocks.find(path); block != blocks.end()) {
          if (residual == ResidualChannels::kTogether) {
            join(s, block_output(block->second), block->second);
          } else {
            fail(s, cat("its channels join a residual add in '", block->second, "', whose channels are left whole"),
                 true);
          }
          return;
        }
        if (outputs.count(path)) return fail(s, kModelOutputs);
        return fail(s, cat("its output leaves LayerStack '", path, "' for a forward shrink cannot follow"));
      }
      const auto m = stack->ptr(j);
      const auto name = child(path, std::to_string(j));
      if (const auto norm = norm_of(m)) {
        if (!norm->affine) {
          return fail(s,
                      cat("'", name, "' is a BatchNorm without affine weights (a pruned channel would not stay zero)"));
        }
        spaces[find(s)].followers.push_back(name);
        continue;
      }
      if (const auto conv = std::dynamic_pointer_cast<nn::Conv2dImpl>(m)) {
        if (flattened) return fail(s, cat("'", name, "' is a Conv2d after a flatten"));
        if (is_depthwise(*conv)) {
          spaces[find(s)].followers.push_back(name);
          continue;
        }
        if (conv->options.groups() != 1) {
          return fail(s, cat("'", name, "' is a grouped Conv2d (groups ", conv->options.groups(), ")"));
        }
        spaces[find(s)].consumers.push_back({name, 1});
        return;
      }
      if (const auto linear = std::dynamic_pointer_cast<nn::LinearImpl>(m)) {
        const int64_t in = linear->options.in_features();
        const int64_t channels = spaces[find(s)].channels;
        if (spatial && !flattened) {
          return fail(s, cat("'", name, "' is a Linear on a feature map that was not flattened"));
        }
        if (in % channels != 0) {
          return fail(s, cat("'", name, "' reads ", in, " features, not a whole number per channel of ", channels));
        }
        spaces[find(s)].consumers.push_back({name, in / channels});
        return;
      }
      if (is<nn::FlattenImpl>(m)) {
        flattened = true;
        continue;
      }
      if (is<models::ResidualBlockImpl>(m) && !flattened) {
        if (residual == ResidualChannels::kWhole) {
          return fail(s,
                      cat("its channels enter the residual block '", name, "', whose residual channels are left whole"),
                      true);
        }
        // The block's first convs read the channels; an identity shortcut carries them to the add.
        flow(child(name, "body"), 0, s, spatial);
        if (stacks.at(child(name, "shortcut"))->size() > 0) {
          flow(child(name, "shortcut"), 0, s, spatial);
        } else {
          join(s, block_output(name), name);
        }
        return;
      }
      if (keeps_zero_channelwise(m)) continue;
      return fail(s, cat("'", name, "' (", type_name(*m), ") on the way to the next weighted layer is not one shrink ",
                         "can follow channel by channel"));
    }
  }
};

}  // namespace

ChannelGraph channel_graph(const nn::Module& root, ResidualChannels residual) {
  Walker walker(root, residual);
  size_t order = 0;
  // Module order: named_modules lists stacks as the model declares them.
  for (const auto& item : root.named_modules()) {
    const auto stack = std::dynamic_pointer_cast<models::LayerStackImpl>(item.value());
    if (!stack) continue;
    for (size_t i = 0; i < stack->size(); ++i) {
      const auto m = stack->ptr(i);
      int64_t channels = 0;
      bool spatial = false;
      if (const auto conv = std::dynamic_pointer_cast<nn::Conv2dImpl>(m)) {
        if (conv->options.groups() != 1) continue;  // its channels are its input's: a follower or nothing
        channels = conv->options.out_channels();
        spatial = true;
      } else if (const auto linear = std::dynamic_pointer_cast<nn::LinearImpl>(m)) {
        channels = linear->options.out_features();
      } else {
        continue;
      }
      const auto s = walker.space(channels);
      walker.spaces[s].producers.emplace_back(order++, child(item.key(), std::to_string(i)));
      walker.flow(item.key(), i + 1, s, spatial);
    }
  }
  // Each merged space with a producer, in the order of its first producer.
  std::vector<std::pair<size_t, size_t>> firsts;  // (first producer's order, space)
  for (size_t s = 0; s < walker.spaces.size(); ++s) {
    auto& sp = walker.spaces[s];
    if (walker.find(s) != s || sp.producers.empty()) continue;
    std::sort(sp.producers.begin(), sp.producers.end());
    if (sp.why_not.empty() && sp.consumers.empty()) sp.why_not = "no layer reads its channels";
    firsts.emplace_back(sp.producers.front().first, s);
  }
  std::sort(firsts.begin(), firsts.end());
  ChannelGraph graph;
  std::vector<std::pair<size_t, SkippedLayer>> skipped;
  for (const auto& [first, s] : firsts) {
    auto& sp = walker.spaces[s];
    if (!sp.why_not.empty()) {
      for (const auto& p : sp.producers) skipped.push_back({p.first, {p.second, sp.why_not, sp.residual}});
      continue;
    }
    ChannelGroup g;
    for (const auto& p : sp.producers) g.producers.push_back(p.second);
    g.channels = sp.channels;
    g.followers = std::move(sp.followers);
    g.consumers = std::move(sp.consumers);
    graph.groups.push_back(std::move(g));
  }
  // Skipped layers in module order, as the report lists them.
  std::sort(skipped.begin(), skipped.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& k : skipped) graph.skipped.push_back(std::move(k.second));
  return graph;
}

namespace {

std::pair<std::shared_ptr<models::LayerStackImpl>, size_t> place_of(nn::Module& root, const std::string& path) {
  const auto [parent, index] = parent_and_index(path);
  const auto modules = root.named_modules();
  std::shared_ptr<models::LayerStackImpl> stack;
  if (modules.contains(parent)) stack = std::dynamic_pointer_cast<models::LayerStackImpl>(modules[parent]);
  SHRINK_CHECK(stack && index < stack->size(), "prune_channels: no layer '", path, "' in a LayerStack of the model");
  return {stack, index};
}

at::Tensor pick(const at::Tensor& t, int64_t dim, const at::Tensor& index) {
  return t.detach().index_select(dim, index.to(t.device())).contiguous();
}

void copy_into(const at::Tensor& to, const at::Tensor& from) {
  torch::NoGradGuard no_grad;
  SHRINK_CHECK(to.sizes() == from.sizes(), "prune_channels: a resized tensor is ", from.sizes(), ", its layer's ",
               to.sizes());
  to.copy_(from);
}

// The layer at `path` rebuilt by `make` with the old one's device, dtype and mode.
template <class Impl, class Make>
void rebuild(nn::Module& root, const std::string& path, Make make) {
  auto [stack, index] = place_of(root, path);
  const auto old = std::dynamic_pointer_cast<Impl>(stack->ptr(index));
  SHRINK_CHECK(old, "prune_channels: '", path, "' is a ", stack->ptr(index)->name(), ", not what was pruned");
  auto fresh = make(*old);
  // Each tensor where and as the old layer kept it (a BatchNorm's step count stays an integer).
  torch::NoGradGuard no_grad;
  const auto old_params = old->named_parameters(false), old_buffers = old->named_buffers(false);
  for (auto& p : fresh->named_parameters(false)) {
    const auto& was = old_params[p.key()];
    p.value().set_data(p.value().detach().to(was.device(), was.scalar_type()));
  }
  for (auto& b : fresh->named_buffers(false)) {
    const auto& was = old_buffers[b.key()];
    b.value().set_data(b.value().to(was.device(), was.scalar_type()));
  }
  fresh->train(old->is_training());
  stack->replace(index, nn::AnyModule(fresh));
}

nn::Conv2dOptions conv_options(const nn::Conv2dImpl& c, int64_t in, int64_t out, int64_t groups) {
  const auto& o = c.options;
  return nn::Conv2dOptions(in, out, o.kernel_size())
      .stride(o.stride())
      .padding(o.padding())
      .dilation(o.dilation())
      .groups(groups)
      .bias(o.bias())
      .padding_mode(o.padding_mode());
}

// Output channels (producers, depthwise followers).
void keep_outputs(nn::Module& root, const std::string& path, const at::Tensor& kept) {
  const auto modules = root.named_modules();
  const auto m = modules[path];
  const int64_t k = kept.numel();
  if (std::dynamic_pointer_cast<nn::Conv2dImpl>(m)) {
    rebuild<nn::Conv2dImpl>(root, path, [&](nn::Conv2dImpl& old) {
      const bool dw = is_depthwise(old);
      auto fresh = nn::Conv2d(conv_options(old, dw ? k : old.options.in_channels(), k, dw ? k : 1));
      copy_into(fresh->weight, pick(old.weight, 0, kept));
      if (old.options.bias()) copy_into(fresh->bias, pick(old.bias, 0, kept));
      return fresh;
    });
  } else if (std::dynamic_pointer_cast<nn::LinearImpl>(m)) {
    rebuild<nn::LinearImpl>(root, path, [&](nn::LinearImpl& old) {
      auto fresh = nn::Linear(nn::LinearOptions(old.options.in_features(), k).bias(old.options.bias()));
      copy_into(fresh->weight, pick(old.weight, 0, kept));
      if (old.options.bias()) copy_into(fresh->bias, pick(old.bias, 0, kept));
      return fresh;
    });
  } else {
    const auto norm = [&](auto& old, auto fresh) {
      const auto& o = old.options;
      if (o.affine()) {
        copy_into(fresh->weight, pick(old.weight, 0, kept));
        copy_into(fresh->bias, pick(old.bias, 0, kept));
      }
      if (o.track_running_stats()) {
        copy_into(fresh->running_mean, pick(old.running_mean, 0, kept));
        copy_into(fresh->running_var, pick(old.running_var, 0, kept));
        copy_into(fresh->num_batches_tracked, old.num_batches_tracked.detach());
      }
      return fresh;
    };
    if (std::dynamic_pointer_cast<nn::BatchNorm2dImpl>(m)) {
      rebuild<nn::BatchNorm2dImpl>(root, path, [&](nn::BatchNorm2dImpl& old) {
        return norm(old, nn::BatchNorm2d(nn::BatchNorm2dOptions(old.options).num_features(k)));
      });
    } else {
      rebuild<nn::BatchNorm1dImpl>(root, path, [&](nn::BatchNorm1dImpl& old) {
        return norm(old, nn::BatchNorm1d(nn::BatchNorm1dOptions(old.options).num_features(k)));
      });
    }
  }
}

// Input channels (consumers); `group` input features per channel.
void keep_inputs(nn::Module& root, const std::string& path, const at::Tensor& kept, int64_t group) {
  const auto modules = root.named_modules();
  if (std::dynamic_pointer_cast<nn::Conv2dImpl>(modules[path])) {
    rebuild<nn::Conv2dImpl>(root, path, [&](nn::Conv2dImpl& old) {
      auto fresh = nn::Conv2d(conv_options(old, kept.numel(), old.options.out_channels(), 1));
      copy_into(fresh->weight, pick(old.weight, 1, kept));
      if (old.options.bias()) copy_into(fresh->bias, old.bias.detach());
      return fresh;
    });
    return;
  }
  // channel c → features [c × group, (c + 1) × group)
  const auto features = (kept.unsqueeze(1) * group + torch::arange(group, kept.options()).unsqueeze(0)).reshape(-1);
  rebuild<nn::LinearImpl>(root, path, [&](nn::LinearImpl& old) {
    auto fresh = nn::Linear(nn::LinearOptions(features.numel(), old.options.out_features()).bias(old.options.bias()));
    copy_into(fresh->weight, pick(old.weight, 1, features));
    if (old.options.bias()) copy_into(fresh->bias, old.bias.detach());
    return fresh;
  });
}

}  // namespace

void remove_channels(nn::Module& root, const std::vector<ChannelRemoval>& removals) {
  for (const auto& r : removals) {
    SHRINK_CHECK(!r.group.producers.empty() && !r.group.consumers.empty(),
                 "prune_channels: a group needs a producer and a consumer");
    SHRINK_CHECK(!r.kept.empty(), "prune_channels: '", r.group.name(), "' would keep no channel");
    for (size_t i = 0; i < r.kept.size(); ++i) {
      SHRINK_CHECK(r.kept[i] >= 0 && r.kept[i] < r.group.channels && (i == 0 || r.kept[i] > r.kept[i - 1]),
                   "prune_channels: the kept channels of '", r.group.name(), "' must ascend within [0, ",
                   r.group.channels, ")");
    }
    // The layers must still be the sizes the group was found with (a file's description says so).
    const auto modules = root.named_modules();
    const auto size_of = [&](const std::string& path, bool outputs) -> int64_t {
      const auto* m = modules.find(path);
      SHRINK_CHECK(m, "prune_channels: the model has no layer '", path, "'");
      if (const auto c = std::dynamic_pointer_cast<nn::Conv2dImpl>(*m))
        return outputs ? c->options.out_channels() : c->options.in_channels();
      if (const auto l = std::dynamic_pointer_cast<nn::LinearImpl>(*m))
        return outputs ? l->options.out_features() : l->options.in_features();
      if (const auto n = norm_of(*m)) return n->features;
      throw core::Error(cat("prune_channels: '", path, "' is a ", (*m)->name(), ", not a Conv2d, Linear or BatchNorm"));
    };
    std::vector<std::string> outputs = r.group.producers;
    outputs.insert(outputs.end(), r.group.followers.begin(), r.group.followers.end());
    for (const auto& layer : outputs) {
      SHRINK_CHECK(size_of(layer, true) == r.group.channels, "prune_channels: '", layer, "' has ", size_of(layer, true),
                   " output channels, the removal was made for ", r.group.channels);
    }
    for (const auto& c : r.group.consumers) {
      SHRINK_CHECK(size_of(c.layer, false) == r.group.channels * c.group, "prune_channels: '", c.layer, "' reads ",
                   size_of(c.layer, false), " inputs, the removal was made for ", r.group.channels, " x ", c.group);
    }
    const auto kept = torch::tensor(r.kept, torch::kLong);
    for (const auto& layer : outputs) keep_outputs(root, layer, kept);
    for (const auto& c : r.group.consumers) keep_inputs(root, c.layer, kept, c.group);
  }
}

json to_json(const std::vector<ChannelRemoval>& removals) {
  json out = json::array();
  for (const auto& r : removals) {
    json consumers = json::array();
    for (const auto& c : r.group.consumers) consumers.push_back({{"layer", c.layer}, {"group", c.group}});
    out.push_back({{"producers", r.group.producers},
                   {"channels", r.group.channels},
                   {"followers", r.group.followers},
                   {"consumers", consumers},
                   {"kept", r.kept}});
  }
  return json{{"groups", out}};
}

std::vector<ChannelRemoval> removals_from_json(const json& j) {
  std::vector<ChannelRemoval> out;
  constexpr int64_t kMost = int64_t{1} << 31;
  for (const auto& g : j.at("groups")) {
    ChannelRemoval r;
    if (g.contains("producers")) {
      r.group.producers = g.at("producers").get<std::vector<std::string>>();
      for (const auto& c : g.at("consumers")) {
        r.group.consumers.push_back({c.at("layer").get<std::string>(), c.at("group").get<int64_t>()});
      }
    } else {
      r.group.producers = {g.at("producer").get<std::string>()};
      r.group.consumers = {{g.at("consumer").get<std::string>(), g.at("consumer_group").get<int64_t>()}};
    }
    r.group.channels = g.at("channels").get<int64_t>();
    r.group.followers = g.at("followers").get<std::vector<std::string>>();
    r.kept = g.at("kept").get<std::vector<int64_t>>();
    SHRINK_CHECK(!r.group.producers.empty() && !r.group.consumers.empty(), "prune_channels: group ", out.size(),
                 " names ", r.group.producers.size(), " producers and ", r.group.consumers.size(),
                 " consumers; it needs one of each at least");
    const auto& name = r.group.name();
    SHRINK_CHECK(r.group.channels > 0 && r.group.channels <= kMost, "prune_channels: group '", name, "' has ",
                 r.group.channels, " channels, outside [1, 2^31]");
    SHRINK_CHECK(static_cast<int64_t>(r.kept.size()) <= r.group.channels, "prune_channels: group '", name, "' keeps ",
                 r.kept.size(), " of its ", r.group.channels, " channels");
    for (const auto& c : r.group.consumers) {
      SHRINK_CHECK(c.group > 0 && c.group <= kMost, "prune_channels: group '", name, "' has consumer '", c.layer,
                   "' reading ", c.group, " inputs a channel, outside [1, 2^31]");
    }
    out.push_back(std::move(r));
  }
  return out;
}

// Files of channel-pruned models rebuild the smaller layers before the weights load.
SHRINK_ON_LOAD(prune_channel_transform) {
  models::TransformKind kind;
  kind.apply = [](models::Model& m, const json& settings) { remove_channels(*m.module, removals_from_json(settings)); };
  models::register_transform(kChannelTransform, kind);
}

}  // namespace shrink::compress::prune
