// Channel dependency analysis over LayerStacks, and the resize of the layers a removal touches.
#include "compress/prune/channel_graph.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/torch.h>

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

struct Walker {
  const nn::Module& root;
  std::map<std::string, std::shared_ptr<models::LayerStackImpl>> stacks;
  // A Classifier's features run on into its classifier through a flatten.
  std::map<std::string, std::string> flattens_into;
  std::map<std::string, std::string> blocks;  // a ResidualBlock's body / shortcut → the block
  std::set<std::string> outputs;              // stacks whose output is the model's

  explicit Walker(const nn::Module& r) : root(r) {
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

  // Where the channels of the producer at (stack, index) go; fills the group or says why not.
  std::string follow(const std::string& stack_path, size_t index, int64_t channels, bool spatial, ChannelGroup& g) {
    std::string path = stack_path;
    auto stack = stacks.at(path);
    bool flattened = false;
    for (size_t j = index + 1;; ++j) {
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
          return cat("its channels join a residual add in '", block->second, "', whose channels are left whole");
        }
        if (outputs.count(path)) return kModelOutputs;
        return cat("its output leaves LayerStack '", path, "' for a forward shrink cannot follow");
      }
      const auto m = stack->ptr(j);
      const auto name = child(path, std::to_string(j));
      if (const auto norm = norm_of(m)) {
        if (!norm->affine)
          return cat("'", name, "' is a BatchNorm without affine weights (a pruned channel would not stay zero)");
        g.followers.push_back(name);
        continue;
      }
      if (const auto conv = std::dynamic_pointer_cast<nn::Conv2dImpl>(m)) {
        if (flattened) return cat("'", name, "' is a Conv2d after a flatten");
        if (is_depthwise(*conv)) {
          g.followers.push_back(name);
          continue;
        }
        if (conv->options.groups() != 1) {
          return cat("'", name, "' is a grouped Conv2d (groups ", conv->options.groups(), ")");
        }
        g.consumer = name;
        return "";
      }
      if (const auto linear = std::dynamic_pointer_cast<nn::LinearImpl>(m)) {
        const int64_t in = linear->options.in_features();
        if (spatial && !flattened) return cat("'", name, "' is a Linear on a feature map that was not flattened");
        if (in % channels != 0) {
          return cat("'", name, "' reads ", in, " features, not a whole number per channel of ", channels);
        }
        g.consumer = name;
        g.consumer_group = in / channels;
        return "";
      }
      if (is<nn::FlattenImpl>(m)) {
        flattened = true;
        continue;
      }
      if (keeps_zero_channelwise(m)) continue;
      return cat("'", name, "' (", type_name(*m), ") on the way to the next weighted layer is not one shrink can ",
                 "follow channel by channel");
    }
  }
};

}  // namespace

ChannelGraph channel_graph(const nn::Module& root) {
  Walker walker(root);
  ChannelGraph graph;
  // Module order: named_modules lists stacks as the model declares them.
  for (const auto& item : root.named_modules()) {
    const auto stack = std::dynamic_pointer_cast<models::LayerStackImpl>(item.value());
    if (!stack) continue;
    for (size_t i = 0; i < stack->size(); ++i) {
      const auto m = stack->ptr(i);
      const auto name = child(item.key(), std::to_string(i));
      ChannelGroup g;
      g.producer = name;
      bool spatial = false;
      if (const auto conv = std::dynamic_pointer_cast<nn::Conv2dImpl>(m)) {
        if (conv->options.groups() != 1) continue;  // its channels are its input's: a follower or nothing
        g.channels = conv->options.out_channels();
        spatial = true;
      } else if (const auto linear = std::dynamic_pointer_cast<nn::LinearImpl>(m)) {
        g.channels = linear->options.out_features();
      } else {
        continue;
      }
      const auto why_not = walker.follow(item.key(), i, g.channels, spatial, g);
      if (why_not.empty()) {
        graph.groups.push_back(std::move(g));
      } else {
        graph.skipped.push_back({name, why_not});
      }
    }
  }
  return graph;
}

namespace {

std::pair<std::shared_ptr<models::LayerStackImpl>, size_t> place_of(nn::Module& root, const std::string& path) {
  const auto dot = path.rfind('.');
  const std::string parent = dot == std::string::npos ? "" : path.substr(0, dot);
  const std::string index = dot == std::string::npos ? path : path.substr(dot + 1);
  const auto modules = root.named_modules();
  std::shared_ptr<models::LayerStackImpl> stack;
  if (modules.contains(parent)) stack = std::dynamic_pointer_cast<models::LayerStackImpl>(modules[parent]);
  SHRINK_CHECK(stack && !index.empty() && index.find_first_not_of("0123456789") == std::string::npos &&
                   std::stoull(index) < stack->size(),
               "prune_channels: no layer '", path, "' in a LayerStack of the model");
  return {stack, std::stoull(index)};
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
    SHRINK_CHECK(!r.kept.empty(), "prune_channels: '", r.group.producer, "' would keep no channel");
    for (size_t i = 0; i < r.kept.size(); ++i) {
      SHRINK_CHECK(r.kept[i] >= 0 && r.kept[i] < r.group.channels && (i == 0 || r.kept[i] > r.kept[i - 1]),
                   "prune_channels: the kept channels of '", r.group.producer, "' must ascend within [0, ",
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
    SHRINK_CHECK(size_of(r.group.producer, true) == r.group.channels, "prune_channels: '", r.group.producer, "' has ",
                 size_of(r.group.producer, true), " output channels, the removal was made for ", r.group.channels);
    for (const auto& f : r.group.followers) {
      SHRINK_CHECK(size_of(f, true) == r.group.channels, "prune_channels: '", f, "' has ", size_of(f, true),
                   " channels, the removal was made for ", r.group.channels);
    }
    SHRINK_CHECK(size_of(r.group.consumer, false) == r.group.channels * r.group.consumer_group, "prune_channels: '",
                 r.group.consumer, "' reads ", size_of(r.group.consumer, false), " inputs, the removal was made for ",
                 r.group.channels, " x ", r.group.consumer_group);
    const auto kept = torch::tensor(r.kept, torch::kLong);
    keep_outputs(root, r.group.producer, kept);
    for (const auto& f : r.group.followers) keep_outputs(root, f, kept);
    keep_inputs(root, r.group.consumer, kept, r.group.consumer_group);
  }
}

json to_json(const std::vector<ChannelRemoval>& removals) {
  json out = json::array();
  for (const auto& r : removals) {
    out.push_back({{"producer", r.group.producer},
                   {"channels", r.group.channels},
                   {"followers", r.group.followers},
                   {"consumer", r.group.consumer},
                   {"consumer_group", r.group.consumer_group},
                   {"kept", r.kept}});
  }
  return json{{"groups", out}};
}

std::vector<ChannelRemoval> removals_from_json(const json& j) {
  std::vector<ChannelRemoval> out;
  for (const auto& g : j.at("groups")) {
    ChannelRemoval r;
    r.group.producer = g.at("producer").get<std::string>();
    r.group.channels = g.at("channels").get<int64_t>();
    r.group.followers = g.at("followers").get<std::vector<std::string>>();
    r.group.consumer = g.at("consumer").get<std::string>();
    r.group.consumer_group = g.at("consumer_group").get<int64_t>();
    r.kept = g.at("kept").get<std::vector<int64_t>>();
    SHRINK_CHECK(r.group.channels > 0 && r.group.consumer_group > 0 && r.group.channels <= (int64_t{1} << 31) &&
                     r.group.consumer_group <= (int64_t{1} << 31) &&
                     static_cast<int64_t>(r.kept.size()) <= r.group.channels,
                 "prune_channels: malformed group '", r.group.producer, "'");
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
