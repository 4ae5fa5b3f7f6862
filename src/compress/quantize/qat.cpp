// QAT: fake-quantized forward passes through LayerStack overrides (the module's parameters and
// names are untouched, so checkpoints and masks see the float model), then int8 conversion.
#include "compress/quantize/qat.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "compress/quantize/quantized_conv2d.h"
#include "core/error.h"
#include "core/pattern.h"
#include "models/layer_stack.h"
#include "models/residual_add.h"
#include "models/torchscript.h"

namespace shrink::compress::quantize {

namespace nn = torch::nn;
using core::cat;
using nlohmann::json;

// Where u8 × s8 pairs are summed in 16 bits (oneDNN without VNNI), QAT keeps full-range
// activations (the kernels clamp at 255 as fake quantization does) and gives the weights 7 bits
// instead: 255 × 64 × 2 fits. oneDNN 2.6 halved such weights itself; 3.x's brgemm kernels do not,
// and a QAT convnet converted on LibTorch 2.15 with AVX-512 without VNNI was 0.51 (of the output
// range) off the model it trained.
ObserverOptions default_qat_weight_observer(Backend b) {
  return default_weight_observer(b).kind(ObserverKind::kMovingAverage).reduce_range(int8_sums_may_saturate(b));
}

ObserverOptions default_qat_activation_observer(Backend) {
  return ObserverOptions().kind(ObserverKind::kMovingAverage).dtype(QDtype::kQUInt8);
}

const config::OptionsSpec<QatOptions>& qat_spec() {
  using O = QatOptions;
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, backend, config::one_of<BackendChoice>(), "int8 engine; auto: onednn on x86, else qnnpack"),
       observer_binding<O>(
           "weights", [](const O& o) { return o.weights(); }, [](O& o, ObserverOptions v) { o.weights(v); },
           default_qat_weight_observer,
           "default: moving_average, per-channel symmetric qint8 on onednn (7-bit without VNNI)"),
       observer_binding<O>(
           "activations", [](const O& o) { return o.activations(); }, [](O& o, ObserverOptions v) { o.activations(v); },
           default_qat_activation_observer, "default: moving_average quint8"),
       SHRINK_OPTION(O, start_epoch, config::number(0), "fake quantization from this epoch on"),
       SHRINK_OPTION(O, end_epoch, config::number(-1), "observers stop here (fake quantization goes on); -1: end"),
       SHRINK_OPTION(O, freeze_observers_epoch, config::number(-1), "-1: never"),
       SHRINK_OPTION(O, freeze_bn_epoch, config::number(-1), "BatchNorm uses running statistics from here; -1: never"),
       SHRINK_OPTION(O, learnable_scales, config::boolean(), "LSQ: activation scales trained once observers freeze"),
       SHRINK_OPTION(O, exclude, config::list_of(config::string()), "regexes of layer paths kept float")});
  return spec;
}

void validate(const QatOptions& o) {
  qat_spec().check(o, "qat");
  const auto b = resolve_backend(o.backend());
  const auto w = o.weights().value_or(default_qat_weight_observer(b));
  const auto a = o.activations().value_or(default_qat_activation_observer(b));
  validate(w);
  validate(a);
  check_compatible(b, w, a);
  if (w.per_channel() && w.ch_axis() != 0)
    throw core::UsageError(cat("per-channel weights use ch_axis 0, got ", w.ch_axis()));
  if (keeps_histogram(w.kind()) || keeps_histogram(a.kind())) {
    throw core::UsageError(
        "QAT observers run every step: use minmax or moving_average (histogram observers are for PTQ)");
  }
  // Fake quantization would clamp at 127 while the int8 kernels clamp at 255: the converted model
  // would compute other values than the ones trained.
  if (a.reduce_range()) {
    throw core::UsageError(
        "activations.reduce_range is for PTQ: QAT trains against the 7-bit clamp, which the converted "
        "int8 kernels (0..255) do not apply");
  }
  if (o.end_epoch() >= 0 && o.end_epoch() <= o.start_epoch()) {
    throw core::UsageError(cat("end_epoch (", o.end_epoch(), ") must be after start_epoch (", o.start_epoch(), ")"));
  }
  if (o.freeze_observers_epoch() >= 0 && o.freeze_observers_epoch() <= o.start_epoch()) {
    throw core::UsageError(cat("freeze_observers_epoch (", o.freeze_observers_epoch(), ") must be after start_epoch (",
                               o.start_epoch(), "): the observers need some steps"));
  }
  core::compile_patterns(o.exclude(), "exclude");
}

struct QatModifier::Group {
  LayerGroup group;
  std::shared_ptr<models::LayerStackImpl> stack;
  std::shared_ptr<nn::Conv2dImpl> conv;
  std::shared_ptr<nn::LinearImpl> linear;
  Conv2dGeometry geometry;
  at::Tensor bn_weight, bn_bias, bn_mean, bn_var, bn_batches;
  double bn_eps = 1e-5, bn_momentum = 0.1;
  FakeQuantize weight{nullptr}, input{nullptr}, output{nullptr};
};

QatModifier::QatModifier(models::Model model, QatOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  SHRINK_CHECK(model_.module, "QatModifier needs a model");
  validate(options_);
  backend_ = resolve_backend(options_.backend());
  weights_ = options_.weights().value_or(default_qat_weight_observer(backend_));
  weights_.ch_axis(0);
  activations_ = options_.activations().value_or(default_qat_activation_observer(backend_));
}

void QatModifier::check_epochs(const QatOptions& o, int64_t epochs, const std::string& run) {
  const auto e = static_cast<double>(epochs);
  if (o.start_epoch() >= e)
    throw core::UsageError(cat("start_epoch (", o.start_epoch(), ") must fall inside the ", run));
  for (const auto& [key, value] : {std::pair<const char*, double>{"end_epoch", o.end_epoch()},
                                   {"freeze_observers_epoch", o.freeze_observers_epoch()},
                                   {"freeze_bn_epoch", o.freeze_bn_epoch()}}) {
    if (value > e) throw core::UsageError(cat(key, " (", value, ") is past the ", run));
  }
}

void QatModifier::check(const QatOptions&, torch::nn::Module& model) {
  if (find_groups(model).empty() && models::is_torchscript(model)) {
    throw core::UsageError(cat("qat: the model is TorchScript: ", models::kTorchScriptSupports));
  }
  if (find_groups(model).empty()) throw core::UsageError("qat: the model has no Conv2d or Linear layer to quantize");
}

SHRINK_REGISTER_MODIFIER(qat, QatModifier)

std::string QatModifier::fingerprint() const {
  // The resolved engine and observers, with every key of the options.
  return cat("qat ", core::name_of(backend_), " ", observer_json(weights_).dump(), " ",
             observer_json(activations_).dump(), " ", qat_spec().text(options_));
}

void QatModifier::prepare(nn::Module& module) {
  if (prepared_) return;
  SHRINK_CHECK(&module == model_.module.get(), "QatModifier prepared on a different module than its model");
  std::map<std::string, std::shared_ptr<nn::Module>> modules;
  for (const auto& item : module.named_modules("", true)) modules[item.key()] = item.value();
  const bool lsq = options_.learnable_scales() && !activations_.per_channel();
  const auto exclude = core::compile_patterns(options_.exclude(), "exclude");
  // The fake-quantize layers' scales and observer ranges live where the model does (a CUDA model
  // is prepared after it moved there).
  const auto params = module.parameters();
  const at::Device device = params.empty() ? at::Device(at::kCPU) : params.front().device();
  for (const auto& lg : find_groups(module)) {
    if (core::search_any(exclude, lg.path())) continue;
    auto g = std::make_shared<Group>();
    g->group = lg;
    g->stack = std::dynamic_pointer_cast<models::LayerStackImpl>(modules.at(lg.stack));
    const auto first = static_cast<size_t>(lg.first);
    int64_t out_channels = 0;
    if ((g->conv = g->stack->as<nn::Conv2dImpl>(first))) {
      g->geometry = geometry_of(*g->conv);
      out_channels = g->conv->options.out_channels();
    } else {
      g->linear = g->stack->as<nn::LinearImpl>(first);
      out_channels = g->linear->options.out_features();
    }
    if (lg.batch_norm) {
      if (auto bn = g->stack->as<nn::BatchNorm2dImpl>(first + 1)) {
        g->bn_weight = bn->weight, g->bn_bias = bn->bias, g->bn_mean = bn->running_mean, g->bn_var = bn->running_var;
        g->bn_batches = bn->num_batches_tracked, g->bn_eps = bn->options.eps();
        g->bn_momentum = bn->options.momentum().value_or(0.1);
      } else if (auto bn1 = g->stack->as<nn::BatchNorm1dImpl>(first + 1)) {
        g->bn_weight = bn1->weight, g->bn_bias = bn1->bias, g->bn_mean = bn1->running_mean,
        g->bn_var = bn1->running_var;
        g->bn_batches = bn1->num_batches_tracked, g->bn_eps = bn1->options.eps();
        g->bn_momentum = bn1->options.momentum().value_or(0.1);
      }
      SHRINK_CHECK(g->bn_mean.defined() && g->bn_var.defined(), "QAT: the BatchNorm after ", lg.path(),
                   " tracks no running statistics");
    }
    g->weight = FakeQuantize(weights_, weights_.per_channel() ? out_channels : 0, false);
    g->input = FakeQuantize(activations_, 0, lsq);
    g->output = FakeQuantize(activations_, 0, lsq);
    for (auto* fq : {&g->weight, &g->input, &g->output}) (*fq)->to(device);
    auto* raw = g.get();
    g->stack->set_override(first, static_cast<size_t>(lg.count),
                           [this, raw](const at::Tensor& x) { return run_group(*raw, x); });
    groups_.push_back(g);
  }
  SHRINK_CHECK(!groups_.empty(), "QAT found no Conv2d or Linear layer to quantize");
  for (const auto& [path, m] : modules) {
    auto add = std::dynamic_pointer_cast<models::ResidualAddImpl>(m);
    if (!add) continue;
    FakeQuantize fq(activations_, 0, lsq);
    fq->to(device);
    auto* raw_add = add.get();
    add->set_output_hook([this, fq, raw_add](const at::Tensor& y) mutable {
      if (!active_) return y;
      fq->enable_observer(observing_ && raw_add->is_training());
      return fq->forward(y);
    });
    adds_.emplace_back(path, fq);
  }
  prepared_ = true;
}

at::Tensor QatModifier::run_group(Group& g, const at::Tensor& x) {
  const auto& lg = g.group;
  if (!active_) {
    at::Tensor y = x;
    for (int64_t k = 0; k < lg.count; ++k) y = g.stack->run_layer(static_cast<size_t>(lg.first + k), y);
    return y;
  }
  const bool training = g.stack->is_training();
  const bool observe = observing_ && training;
  g.input->enable_observer(observe);
  g.output->enable_observer(observe);
  g.weight->enable_observer(observe);
  const auto in = g.input->forward(x);
  const at::Tensor& w = g.conv ? g.conv->weight : g.linear->weight;
  const at::Tensor& bias = g.conv ? g.conv->bias : g.linear->bias;
  const auto conv_or_linear = [&](const at::Tensor& weight, const at::Tensor& b) {
    if (g.conv) {
      return at::conv2d(in, weight, b, g.geometry.stride, g.geometry.padding, g.geometry.dilation, g.geometry.groups);
    }
    return at::linear(in, weight, b);
  };
  at::Tensor y;
  if (lg.batch_norm) {
    // PyTorch's QAT ConvBn: quantize the weight as it will be folded (scaled by γ/σ_running), undo
    // the scale on the output, then apply BatchNorm (batch statistics while training, unless frozen).
    std::vector<int64_t> wshape(static_cast<size_t>(w.dim()), 1), yshape(static_cast<size_t>(in.dim()), 1);
    wshape[0] = -1;
    yshape[1] = -1;
    const auto gamma = g.bn_weight.defined() ? g.bn_weight : at::ones_like(g.bn_var);
    const auto factor = gamma / at::sqrt(g.bn_var + g.bn_eps);
    y = conv_or_linear(g.weight->forward(w * factor.reshape(wshape)), at::Tensor());
    y = y / factor.reshape(yshape);
    if (bias.defined()) y = y + bias.reshape(yshape);
    const bool bn_training = training && !bn_frozen_;
    y = at::batch_norm(y, g.bn_weight, g.bn_bias, g.bn_mean, g.bn_var, bn_training, g.bn_momentum, g.bn_eps, true);
    if (bn_training && g.bn_batches.defined()) {
      at::NoGradGuard no_grad;
      g.bn_batches.add_(1);
    }
  } else {
    y = conv_or_linear(g.weight->forward(w), bias);
  }
  if (lg.relu) y = at::relu(y);
  return g.output->forward(y);
}

void QatModifier::update(double epoch) {
  active_ = epoch >= options_.start_epoch();
  const double freeze = options_.freeze_observers_epoch();
  const double end = options_.end_epoch();
  observers_frozen_ = (freeze >= 0 && epoch >= freeze) || (end >= 0 && epoch >= end);
  observing_ = active_ && !observers_frozen_;
  bn_frozen_ = options_.freeze_bn_epoch() >= 0 && epoch >= options_.freeze_bn_epoch();
}

void QatModifier::on_step_begin(train::Trainer&, const train::StepInfo& step) {
  const double epoch =
      static_cast<double>(step.epoch) +
      static_cast<double>(step.step_in_epoch) / static_cast<double>(std::max<int64_t>(step.steps_per_epoch, 1));
  update(epoch);
}

std::vector<at::Tensor> QatModifier::extra_parameters() {
  std::vector<at::Tensor> out;
  const auto add = [&](const FakeQuantize& fq) {
    if (fq->learnable_scale().defined()) out.push_back(fq->learnable_scale());
  };
  for (const auto& g : groups_) {
    add(g->input);
    add(g->output);
  }
  for (const auto& a : adds_) add(a.second);
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> QatModifier::state_tensors() const {
  // The fake-quantize layers sit beside the model's layers, not in its module tree.
  std::vector<std::pair<std::string, at::Tensor>> out;
  const auto add = [&](const std::string& prefix, const FakeQuantize& fq) {
    for (const auto& b : fq->named_buffers()) out.emplace_back(prefix + "." + b.key(), b.value());
    for (const auto& p : fq->named_parameters()) out.emplace_back(prefix + "." + p.key(), p.value());
  };
  for (size_t i = 0; i < groups_.size(); ++i) {
    add(cat("group_", i, "_weight"), groups_[i]->weight);
    add(cat("group_", i, "_input"), groups_[i]->input);
    add(cat("group_", i, "_output"), groups_[i]->output);
  }
  for (size_t i = 0; i < adds_.size(); ++i) add(cat("add_", i), adds_[i].second);
  return out;
}

void QatModifier::save(torch::serialize::OutputArchive& archive) const {
  const auto put = [&](const std::string& name, const FakeQuantize& fq) {
    torch::serialize::OutputArchive sub;
    fq->save(sub);
    archive.write(name, sub);
  };
  for (size_t i = 0; i < groups_.size(); ++i) {
    put(cat("group_", i, "_weight"), groups_[i]->weight);
    put(cat("group_", i, "_input"), groups_[i]->input);
    put(cat("group_", i, "_output"), groups_[i]->output);
  }
  for (size_t i = 0; i < adds_.size(); ++i) put(cat("add_", i), adds_[i].second);
}

void QatModifier::load(torch::serialize::InputArchive& archive) {
  const auto get = [&](const std::string& name, FakeQuantize& fq) {
    torch::serialize::InputArchive sub;
    archive.read(name, sub);
    fq->load(sub);
  };
  for (size_t i = 0; i < groups_.size(); ++i) {
    get(cat("group_", i, "_weight"), groups_[i]->weight);
    get(cat("group_", i, "_input"), groups_[i]->input);
    get(cat("group_", i, "_output"), groups_[i]->output);
  }
  for (size_t i = 0; i < adds_.size(); ++i) get(cat("add_", i), adds_[i].second);
}

void QatModifier::finish(models::Model& model) {
  if (converted_) return;
  SHRINK_CHECK(model.module.get() == model_.module.get(), "QatModifier::finish got a different model");
  SHRINK_CHECK(prepared_, "QAT never started: prepare() was not called");
  for (const auto& g : groups_) {
    SHRINK_CHECK(g->output->observed(), "QAT never observed layer ", g->group.path(), ": its window (from epoch ",
                 options_.start_epoch(), ") began after training ended");
  }
  std::vector<GroupQuantization> groups;
  for (const auto& g : groups_) {
    GroupQuantization q;
    q.group = g->group;
    std::tie(q.weight, q.bias) = fold_batch_norm(*model.module, g->group);
    q.weight_q = g->weight->qparams();
    q.input = g->input->qparams();
    q.output = g->output->qparams();
    groups.push_back(q);
  }
  std::vector<AddQuantization> adds;
  for (const auto& [path, fq] : adds_) adds.push_back({path, fq->qparams()});
  for (const auto& g : groups_) g->stack->clear_overrides();
  active_ = false;
  converted_summary_ = QuantizationSummary();
  converted_ = convert_to_int8(model, backend_, QuantizeMethod::kStatic, weights_.per_channel(), groups, adds,
                               converted_summary_);
}

std::vector<models::Transform> QatModifier::transforms() const {
  if (!converted_) return {};
  return {*converted_};
}

std::shared_ptr<const train::ModifierSummary> QatModifier::summary() const {
  auto s = std::make_shared<QatSummary>();
  s->backend = core::name_of(backend_);
  s->weights = weights_;
  s->activations = activations_;
  s->freeze_observers_epoch = options_.freeze_observers_epoch();
  s->freeze_bn_epoch = options_.freeze_bn_epoch();
  s->learnable_scales = options_.learnable_scales();
  s->groups = static_cast<int64_t>(groups_.size());
  if (converted_) {
    s->int8_layers = converted_summary_.int8_layers;
    s->float_layers = converted_summary_.float_layers;
  }
  return s;
}

}  // namespace shrink::compress::quantize
