// Post-training quantization: group discovery, observation, BN folding, int8 conversion, and the
// structure record that lets a restored file rebuild the same int8 model.
#include "compress/quantize/quantizer.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/utils.h>

#include <functional>
#include <map>
#include <set>

#include "compress/quantize/quantized_conv2d.h"
#include "compress/quantize/quantized_linear.h"
#include "compress/quantize/torchscript_int8.h"
#include "core/error.h"
#include "core/log.h"
#include "core/pattern.h"
#include "core/registration.h"
#include "data/loader.h"
#include "models/layer_stack.h"
#include "models/residual_add.h"
#include "models/restore.h"

namespace shrink::compress::quantize {

namespace nn = torch::nn;
using core::cat;
using nlohmann::json;

const config::OptionsSpec<QuantizeOptions>& quantize_spec() {
  using O = QuantizeOptions;
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, method, config::one_of<QuantizeMethod>(),
                     "static: int8 activations calibrated; dynamic: int8 Linear weights, activations per batch"),
       SHRINK_OPTION(O, backend, config::one_of<BackendChoice>(), "int8 engine; auto: onednn on x86, else qnnpack"),
       observer_binding<O>(
           "weights", [](const O& o) { return o.weights(); }, [](O& o, ObserverOptions v) { o.weights(v); },
           default_weight_observer, "weight observer; absent keys: the engine's defaults"),
       observer_binding<O>(
           "activations", [](const O& o) { return o.activations(); }, [](O& o, ObserverOptions v) { o.activations(v); },
           default_activation_observer, "activation observer; absent keys: the engine's defaults"),
       SHRINK_OPTION(O, exclude, config::list_of(config::string()),
                     "regexes of layer paths kept float (features.0, classifier.4)")});
  return spec;
}

void validate(const QuantizeOptions& o) {
  quantize_spec().check(o, "quantize");
  const auto b = resolve_backend(o.backend());
  const auto w = o.weights().value_or(default_weight_observer(b));
  const auto a = o.activations().value_or(default_activation_observer(b));
  validate(w);
  validate(a);
  if (w.per_channel() && w.ch_axis() != 0) {
    throw core::UsageError(
        cat("per-channel weights are quantized along the output channels (ch_axis 0), got ch_axis ", w.ch_axis()));
  }
  check_compatible(b, w, a);
  core::compile_patterns(o.exclude(), "exclude");
}

std::string LayerGroup::path() const { return stack.empty() ? std::to_string(first) : cat(stack, ".", first); }

namespace {

using Modules = std::map<std::string, std::shared_ptr<nn::Module>>;

Modules modules_by_path(nn::Module& module) {
  Modules out;
  for (const auto& item : module.named_modules("", true)) out[item.key()] = item.value();
  return out;
}

std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

std::vector<std::pair<std::string, std::shared_ptr<models::LayerStackImpl>>> stacks_of(nn::Module& module) {
  std::vector<std::pair<std::string, std::shared_ptr<models::LayerStackImpl>>> out;
  for (const auto& item : module.named_modules("", true)) {
    if (auto s = std::dynamic_pointer_cast<models::LayerStackImpl>(item.value())) out.emplace_back(item.key(), s);
  }
  return out;
}

std::shared_ptr<models::LayerStackImpl> stack_at(const Modules& modules, const std::string& path) {
  const auto it = modules.find(path);
  auto s = it == modules.end() ? nullptr : std::dynamic_pointer_cast<models::LayerStackImpl>(it->second);
  if (!s) throw core::Error(cat("int8 structure: no layer stack at '", path, "'"));
  return s;
}

bool is_a_relu(const std::shared_ptr<nn::Module>& m) { return std::dynamic_pointer_cast<nn::ReLUImpl>(m) != nullptr; }

// Layers that take a quantized tensor as it is (elementwise on the integers, or int8 already).
bool takes_quantized(const std::shared_ptr<nn::Module>& m) {
  return std::dynamic_pointer_cast<nn::ReLUImpl>(m) || std::dynamic_pointer_cast<nn::MaxPool2dImpl>(m) ||
         std::dynamic_pointer_cast<nn::AdaptiveAvgPool2dImpl>(m) || std::dynamic_pointer_cast<nn::IdentityImpl>(m) ||
         std::dynamic_pointer_cast<nn::DropoutImpl>(m) || std::dynamic_pointer_cast<nn::FlattenImpl>(m) ||
         std::dynamic_pointer_cast<Int8LayerImpl>(m);
}

std::pair<at::Tensor, at::Tensor> folded(const models::LayerStackImpl& stack, const LayerGroup& g) {
  at::NoGradGuard no_grad;
  at::Tensor w, b;
  if (auto conv = stack.as<nn::Conv2dImpl>(static_cast<size_t>(g.first))) {
    w = conv->weight.detach().clone();
    b = conv->bias.defined() ? conv->bias.detach().clone() : at::zeros({w.size(0)}, w.options());
  } else if (auto lin = stack.as<nn::LinearImpl>(static_cast<size_t>(g.first))) {
    w = lin->weight.detach().clone();
    b = lin->bias.defined() ? lin->bias.detach().clone() : at::zeros({w.size(0)}, w.options());
  } else {
    throw core::Error(cat("layer ", g.path(), " is neither Conv2d nor Linear"));
  }
  if (g.batch_norm) {
    at::Tensor mean, var, gamma, beta;
    double eps;
    const auto bn_index = static_cast<size_t>(g.first + 1);
    if (auto bn = stack.as<nn::BatchNorm2dImpl>(bn_index)) {
      mean = bn->running_mean, var = bn->running_var, gamma = bn->weight, beta = bn->bias, eps = bn->options.eps();
    } else if (auto bn1 = stack.as<nn::BatchNorm1dImpl>(bn_index)) {
      mean = bn1->running_mean, var = bn1->running_var, gamma = bn1->weight, beta = bn1->bias, eps = bn1->options.eps();
    } else {
      throw core::Error(cat("layer ", g.path(), ": expected a BatchNorm after it"));
    }
    SHRINK_CHECK(mean.defined() && var.defined(), "BatchNorm after ", g.path(), " tracks no running statistics");
    auto factor = at::rsqrt(var.detach() + eps);
    if (gamma.defined()) factor = factor * gamma.detach();
    std::vector<int64_t> shape(static_cast<size_t>(w.dim()), 1);
    shape[0] = -1;
    w = w * factor.reshape(shape);
    b = (b - mean.detach()) * factor + (beta.defined() ? beta.detach() : at::zeros_like(b));
  }
  return {w.cpu().contiguous(), b.cpu().contiguous()};
}

}  // namespace

std::pair<at::Tensor, at::Tensor> fold_batch_norm(nn::Module& module, const LayerGroup& g) {
  return folded(*stack_at(modules_by_path(module), g.stack), g);
}

std::vector<LayerGroup> find_groups(nn::Module& module) {
  std::vector<LayerGroup> out;
  for (const auto& [path, stack] : stacks_of(module)) {
    const auto n = static_cast<int64_t>(stack->size());
    for (int64_t i = 0; i < n; ++i) {
      const auto m = stack->ptr(static_cast<size_t>(i));
      LayerGroup g;
      g.stack = path;
      g.first = i;
      if (std::dynamic_pointer_cast<nn::Conv2dImpl>(m)) {
        g.kind = GroupKind::kConv2d;
      } else if (std::dynamic_pointer_cast<nn::LinearImpl>(m)) {
        g.kind = GroupKind::kLinear;
      } else {
        continue;
      }
      int64_t j = i + 1;
      if (j < n) {
        const auto next = stack->ptr(static_cast<size_t>(j));
        const bool bn = g.kind == GroupKind::kConv2d ? std::dynamic_pointer_cast<nn::BatchNorm2dImpl>(next) != nullptr
                                                     : std::dynamic_pointer_cast<nn::BatchNorm1dImpl>(next) != nullptr;
        if (bn) {
          g.batch_norm = true;
          ++j;
        }
      }
      if (j < n && is_a_relu(stack->ptr(static_cast<size_t>(j)))) {
        g.relu = true;
        ++j;
      }
      g.count = j - i;
      out.push_back(g);
      i = j - 1;
    }
  }
  return out;
}

struct PostTrainingQuantizer::Observed {
  LayerGroup group;
  std::shared_ptr<models::LayerStackImpl> stack;
  std::shared_ptr<ObserverImpl> input, output;
};

PostTrainingQuantizer::PostTrainingQuantizer(models::Model model, QuantizeOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  SHRINK_CHECK(model_.module, "PostTrainingQuantizer needs a model");
  validate(options_);
  backend_ = resolve_backend(options_.backend());
  // A TorchScript model's dynamic int8 keeps PyTorch's own weights (quantize_dynamic_jit's), so
  // that the file it gives equals PyTorch's; shrink's modules take 7 bits where sums may saturate.
  const bool own_dynamic = options_.method() == QuantizeMethod::kDynamic && !models::is_torchscript(*model_.module);
  weights_ = options_.weights().value_or(own_dynamic ? default_dynamic_weight_observer(backend_)
                                                     : default_weight_observer(backend_));
  activations_ = options_.activations().value_or(default_activation_observer(backend_));
  if (models::is_torchscript(*model_.module) && options_.method() != QuantizeMethod::kDynamic) {
    throw core::UsageError(cat("static int8 of a TorchScript model: ", models::kTorchScriptSupports));
  }
  const auto exclude = core::compile_patterns(options_.exclude(), "exclude");
  for (auto& g : find_groups(*model_.module)) {
    if (options_.method() == QuantizeMethod::kDynamic && g.kind != GroupKind::kLinear) continue;
    if (core::search_any(exclude, g.path())) continue;
    groups_.push_back(g);
  }
}

void PostTrainingQuantizer::prepare() {
  if (prepared_ || options_.method() == QuantizeMethod::kDynamic) {
    prepared_ = true;
    return;
  }
  const auto modules = modules_by_path(*model_.module);
  for (const auto& g : groups_) {
    auto o = std::make_shared<Observed>();
    o->group = g;
    o->stack = stack_at(modules, g.stack);
    o->input = make_observer(activations_);
    o->output = make_observer(activations_);
    auto* stack = o->stack.get();
    const auto first = static_cast<size_t>(g.first), count = static_cast<size_t>(g.count);
    auto in = o->input, out = o->output;
    o->stack->set_override(first, count, [stack, first, count, in, out](const at::Tensor& x) {
      in->forward(x);
      at::Tensor y = x;
      for (size_t k = 0; k < count; ++k) y = stack->run_layer(first + k, y);
      out->forward(y);
      return y;
    });
    observed_.push_back(o);
  }
  for (const auto& [path, m] : modules) {
    if (auto add = std::dynamic_pointer_cast<models::ResidualAddImpl>(m)) {
      auto obs = make_observer(activations_);
      add->set_output_hook([obs](const at::Tensor& y) { return obs->forward(y); });
      add_observers_.emplace_back(path, obs);
    }
  }
  prepared_ = true;
}

void PostTrainingQuantizer::calibrate(const data::Dataset& data, int64_t batches, int64_t batch_size) {
  SHRINK_CHECK(batches > 0, "calibration needs at least one batch, got ", batches);
  if (options_.method() == QuantizeMethod::kDynamic) return;
  if (!prepared_) prepare();
  at::NoGradGuard no_grad;
  const bool was_training = model_.module->is_training();
  model_.module->eval();
  data::BatchLoader loader(data, data::LoaderOptions().batch_size(batch_size).shuffle(false));
  const int64_t n = std::min(batches, loader.batches_per_epoch());
  loader.start_epoch(0);
  for (int64_t i = 0; i < n; ++i) model_.forward(loader.batch(i).inputs.to(at::kCPU));
  model_.module->train(was_training);
}

models::Transform PostTrainingQuantizer::convert(models::Model& model) {
  SHRINK_CHECK(model.module.get() == model_.module.get(), "convert() got a different model than the quantizer's");
  const bool is_static = options_.method() == QuantizeMethod::kStatic;
  if (is_static) {
    SHRINK_CHECK(prepared_, "static quantization: call prepare() and calibrate before convert()");
    for (const auto& o : observed_) {
      SHRINK_CHECK(o->output->observed(), "layer ", o->group.path(),
                   " saw no calibration data: run the model on some batches (calibrate) before convert()");
    }
  }
  summary_ = QuantizationSummary();
  summary_.method = core::name_of(options_.method());
  summary_.backend = core::name_of(backend_);
  summary_.weights = weights_;
  if (is_static) summary_.activations = activations_;
  if (models::is_torchscript(*model.module)) {
    return convert_torchscript_dynamic(model, backend_, weights_, core::compile_patterns(options_.exclude(), "exclude"),
                                       summary_);
  }
  std::vector<GroupQuantization> groups;
  for (size_t i = 0; i < groups_.size(); ++i) {
    GroupQuantization g;
    g.group = groups_[i];
    std::tie(g.weight, g.bias) = fold_batch_norm(*model.module, g.group);
    auto wo = weights_;
    wo.ch_axis(0);
    auto obs = make_observer(wo, g.weight.size(0));
    obs->forward(g.weight);
    g.weight_q = obs->qparams();
    if (is_static) {
      g.input = observed_[i]->input->qparams();
      g.output = observed_[i]->output->qparams();
    }
    groups.push_back(g);
  }
  for (const auto& o : observed_) o->stack->clear_overrides();
  std::vector<AddQuantization> adds;
  for (const auto& [path, obs] : add_observers_) adds.push_back({path, obs->qparams()});
  return convert_to_int8(model, backend_, options_.method(), weights_.per_channel(), groups, adds, summary_);
}

std::vector<FloatLayer> layers_kept_float(const nn::Module& module,
                                          const std::function<std::string(const std::string& layer)>& reason) {
  std::set<std::string> owners;
  for (const auto& p : module.named_parameters()) {
    const auto dot = p.key().rfind('.');
    owners.insert(dot == std::string::npos ? std::string() : p.key().substr(0, dot));
  }
  std::vector<FloatLayer> kept;
  std::string names;
  // A transformer keeps dozens (every LayerNorm, the embeddings): the first few name the kind, the
  // report lists them all with their reasons.
  constexpr size_t kNamed = 4;
  for (const auto& owner : owners) {
    kept.push_back({owner, reason(owner)});
    if (kept.size() <= kNamed) names += (names.empty() ? "" : ", ") + owner;
  }
  if (kept.size() > kNamed) names += cat(" and ", kept.size() - kNamed, " more (the report lists each)");
  if (!kept.empty()) core::log_warn(cat("int8 conversion kept ", kept.size(), " layer(s) in float: ", names));
  return kept;
}

void run_on_cpu(models::Model& model) {
  auto forward = model.forward;
  model.forward = [forward](const at::Tensor& x) {
    auto y = forward(x.device().is_cpu() ? x : x.cpu());
    if (y.is_quantized()) y = y.dequantize();
    return y.device() == x.device() ? y : y.to(x.device());
  };
}

models::Transform convert_to_int8(models::Model& model, Backend backend, QuantizeMethod method, bool per_channel,
                                  const std::vector<GroupQuantization>& groups,
                                  const std::vector<AddQuantization>& adds, QuantizationSummary& summary) {
  const bool is_static = method == QuantizeMethod::kStatic;
  const auto modules = modules_by_path(*model.module);
  json layers = json::array();
  std::set<std::string> covered_stacks;
  std::map<std::string, std::set<int64_t>> in_group;
  for (const auto& q : groups) {
    const auto& g = q.group;
    layers.push_back({{"stack", g.stack},
                      {"first", g.first},
                      {"count", g.count},
                      {"kind", core::name_of(g.kind)},
                      {"relu", g.relu}});
    covered_stacks.insert(g.stack);
    for (int64_t k = 0; k < g.count; ++k) in_group[g.stack].insert(g.first + k);
  }
  json add_paths = json::array();
  for (const auto& a : adds) add_paths.push_back(a.path);
  // Layers in int8 stacks that need float input get it dequantized.
  json float_inputs = json::array();
  if (is_static) {
    for (const auto& stack_path : covered_stacks) {
      const auto stack = stack_at(modules, stack_path);
      for (int64_t i = 0; i < static_cast<int64_t>(stack->size()); ++i) {
        if (in_group[stack_path].count(i)) continue;
        const auto m = stack->ptr(static_cast<size_t>(i));
        const auto path = join(stack_path, std::to_string(i));
        bool composite = false;
        for (const auto& q : groups) composite = composite || q.group.stack.rfind(path + ".", 0) == 0;
        for (const auto& a : adds) composite = composite || a.path.rfind(path + ".", 0) == 0;
        if (takes_quantized(m) || composite) continue;
        float_inputs.push_back({{"stack", stack_path}, {"index", i}});
      }
    }
  }
  const json settings = {{"method", core::name_of(method)},
                         {"backend", core::name_of(backend)},
                         {"per_channel", per_channel},
                         {"layers", layers},
                         {"adds", add_paths},
                         {"float_inputs", float_inputs}};
  // Which float layers the groups came from, to tell an excluded group from an unsupported layer.
  std::map<std::string, GroupKind> group_kinds;
  for (const auto& g : find_groups(*model.module)) group_kinds[g.path()] = g.kind;
  apply_int8_structure(model, settings);

  const auto after = modules_by_path(*model.module);
  std::vector<std::string> int8_layers;
  for (const auto& q : groups) {
    const auto& g = q.group;
    auto layer = std::dynamic_pointer_cast<Int8LayerImpl>(stack_at(after, g.stack)->ptr(static_cast<size_t>(g.first)));
    SHRINK_CHECK(layer, "int8 conversion of ", g.path(), " failed");
    layer->set_weight(q.weight, q.bias, q.weight_q);
    if (is_static) {
      layer->set_input(q.input);
      layer->set_output(q.output);
    }
    int8_layers.push_back(g.path());
  }
  for (const auto& a : adds) {
    auto add = std::dynamic_pointer_cast<models::ResidualAddImpl>(after.at(a.path));
    add->set_output(a.output);
    int8_layers.push_back(a.path);
  }
  const auto kept_float = layers_kept_float(*model.module, [&](const std::string& owner) -> std::string {
    const auto kind = group_kinds.find(owner);
    if (kind == group_kinds.end()) return "no int8 kernel for this layer type";
    return method == QuantizeMethod::kDynamic && kind->second != GroupKind::kLinear
               ? "dynamic quantization covers Linear layers only"
               : "excluded by the recipe (exclude)";
  });
  summary.int8_layers = int8_layers;
  summary.kernels = engine_name(backend);
  summary.float_layers = kept_float;
  return models::Transform{kInt8Transform, settings};
}

void apply_int8_structure(models::Model& model, const json& s) {
  const auto backend = backend_from_name(s.at("backend").get<std::string>());
  use_backend(backend);
  const bool is_static = core::enum_from_name<QuantizeMethod>(s.at("method").get<std::string>(),
                                                              "int8 structure method") == QuantizeMethod::kStatic;
  const bool per_channel = s.at("per_channel").get<bool>();
  const auto modules = modules_by_path(*model.module);
  for (const auto& l : s.at("layers")) {
    const auto stack = stack_at(modules, l.at("stack").get<std::string>());
    const auto first = l.at("first").get<int64_t>(), count = l.at("count").get<int64_t>();
    SHRINK_CHECK(first >= 0 && count >= 1 && first + count <= static_cast<int64_t>(stack->size()),
                 "int8 structure: layers [", first, ", ", first + count, ") out of range");
    const bool relu = l.at("relu").get<bool>();
    const auto kind = core::enum_from_name<GroupKind>(l.at("kind").get<std::string>(), "int8 structure: layer kind");
    const auto m = stack->ptr(static_cast<size_t>(first));
    std::shared_ptr<Int8LayerImpl> layer;
    if (kind == GroupKind::kLinear) {
      auto lin = std::dynamic_pointer_cast<nn::LinearImpl>(m);
      SHRINK_CHECK(lin, "int8 structure: layer ", first, " of '", l.at("stack"), "' is not a Linear");
      auto q = QuantizedLinear(lin->options.in_features(), lin->options.out_features(), per_channel,
                               is_static ? Activations::kStatic : Activations::kDynamic, relu);
      layer = q.ptr();
      stack->replace(static_cast<size_t>(first), nn::AnyModule(q));
    } else {
      auto conv = std::dynamic_pointer_cast<nn::Conv2dImpl>(m);
      SHRINK_CHECK(conv, "int8 structure: layer ", first, " of '", l.at("stack"), "' is not a Conv2d");
      SHRINK_CHECK(is_static, "int8 structure: convolutions are quantized statically only");
      auto q = QuantizedConv2d(geometry_of(*conv), per_channel, relu);
      layer = q.ptr();
      stack->replace(static_cast<size_t>(first), nn::AnyModule(q));
    }
    layer->set_backend(backend);
    for (int64_t k = 1; k < count; ++k) stack->replace(static_cast<size_t>(first + k), nn::AnyModule(nn::Identity()));
  }
  for (const auto& a : s.at("adds")) {
    const auto it = modules.find(a.get<std::string>());
    auto add = it == modules.end() ? nullptr : std::dynamic_pointer_cast<models::ResidualAddImpl>(it->second);
    SHRINK_CHECK(add, "int8 structure: no residual add at '", a.get<std::string>(), "'");
    add->to_int8();
  }
  for (const auto& f : s.at("float_inputs")) {
    const auto stack = stack_at(modules, f.at("stack").get<std::string>());
    const auto index = f.at("index").get<size_t>();
    stack->dequantize_input(index);
  }
  run_on_cpu(model);
}

void check_int8_state(const nn::Module& module, const std::string& source) {
  for (const auto& item : module.named_modules("", true)) {
    const bool int8_layer = std::dynamic_pointer_cast<Int8LayerImpl>(item.value()) != nullptr;
    const auto add = std::dynamic_pointer_cast<models::ResidualAddImpl>(item.value());
    if (!int8_layer && !(add && add->is_int8())) continue;
    for (const auto& b : item.value()->named_buffers(false)) {
      const auto& name = b.key();
      const auto& t = b.value();
      const auto where = [&] { return cat(source, ": '", join(item.key(), name), "'"); };
      if (name.size() >= 5 && name.compare(name.size() - 5, 5, "scale") == 0) {
        if (!(t.isfinite().all().item<bool>() && (t > 0).all().item<bool>())) {
          throw core::Error(cat(where(), " holds a scale that is not positive and finite (min ", t.min().item<float>(),
                                "): a corrupt int8 file"));
        }
      } else if (name.size() >= 10 && name.compare(name.size() - 10, 10, "zero_point") == 0) {
        const bool weight = name == "weight_zero_point";
        const int64_t lo = weight ? -128 : 0, hi = weight ? 127 : 255;
        if (t.numel() > 0 && (t.min().item<int64_t>() < lo || t.max().item<int64_t>() > hi)) {
          throw core::Error(cat(where(), " holds a zero point outside [", lo, ", ", hi, "]: a corrupt int8 file"));
        }
        // The int8 kernels (oneDNN's, FBGEMM's, shrink's) take symmetric weights; a nonzero
        // weight zero point failed deep inside oneDNN with a message naming nothing.
        if (weight && t.numel() > 0 && t.abs().max().item<int64_t>() != 0) {
          throw core::Error(cat(where(), " holds weight zero points other than 0 (up to ",
                                t.abs().max().item<int64_t>(),
                                "): shrink's int8 layers take symmetric weights (zero point 0); requantize the "
                                "weights symmetrically (torch.per_channel_symmetric) or start from the float model"));
        }
      }
    }
  }
}

int64_t int8_weight_count(const nn::Module& module) {
  int64_t n = 0;
  for (const auto& b : module.named_buffers()) {
    if (b.value().scalar_type() == at::kChar) n += b.value().numel();
  }
  return n;
}

// int8 files rebuild their int8 layers before the weights load, and their stored quantization is
// checked after.
SHRINK_ON_LOAD(int8_transform) {
  models::TransformKind kind;
  kind.apply = apply_int8_structure;
  kind.check_loaded = check_int8_state;
  kind.cpu_only = true;
  kind.final = true;
  models::register_transform(kInt8Transform, kind);
}

}  // namespace shrink::compress::quantize
