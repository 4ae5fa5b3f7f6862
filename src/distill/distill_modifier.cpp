// Distillation modifier: adapters sized at construction, teacher frozen in prepare(), soft-target
// and hint losses mixed in adjust_loss(), teacher logits cached by sample index.
#include "distill/distill_modifier.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"
#include "core/format.h"
#include "core/stopwatch.h"
#include "models/feature_capture.h"
#include "models/restore.h"

namespace shrink::distill {

using core::cat;

namespace {

std::vector<std::string> names_of(const std::vector<FeaturePair>& pairs, bool student) {
  std::vector<std::string> names;
  for (const auto& p : pairs) {
    const auto& n = student ? p.student() : p.teacher();
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  return names;
}

at::Device device_of(const torch::nn::Module& m, const at::Tensor& fallback) {
  const auto params = m.parameters();
  return params.empty() ? fallback.device() : params.front().device();
}

}  // namespace

const config::OptionsSpec<FeaturePair>& feature_pair_spec() {
  using O = FeaturePair;
  static const config::OptionsSpec<O> spec(
      {config::required_key(
           SHRINK_OPTION(O, student, config::string(),
                         "a layer of the student, e.g. classifier.3 (a bert's: encoder.layer.N.hidden.0)")),
       config::required_key(SHRINK_OPTION(O, teacher, config::string(),
                                          "a layer of the teacher; an adapter maps widths when they differ")),
       SHRINK_OPTION(O, distance, config::one_of<FeatureDistance>(),
                     "hint loss (token states: over the tokens, padding left out)"),
       SHRINK_OPTION(O, weight, config::number(0), "added to the loss as weight * hint loss")});
  return spec;
}

const config::OptionsSpec<DistillOptions>& distill_options_spec() {
  using O = DistillOptions;
  static const config::OptionsSpec<O> spec([] {
    auto b = config::flatten<O>(
        kd_loss_spec(), [](const O& o) { return o.kd(); }, [](O& o, KdLossOptions v) { o.kd(v); });
    b.push_back(SHRINK_OPTION(O, start_epoch, config::number(0), "distill from this epoch"));
    b.push_back(SHRINK_OPTION(O, end_epoch, config::number(-1), "until this epoch; -1: the end"));
    b.push_back(config::nest_list<O>(
        "features", feature_pair_spec(), [](const O& o) { return o.features(); },
        [](O& o, std::vector<FeaturePair> v) { o.features(std::move(v)); },
        "hint losses between named layers (`shrink inspect --layers` lists them)"));
    b.push_back(SHRINK_OPTION(
        O, cache_teacher_logits, config::boolean(),
        "compute each sample's teacher logits once (no feature pairs: the data has no random augmentation)"));
    return b;
  }());
  return spec;
}

const config::OptionsSpec<DistillSetup>& distill_setup_spec() {
  using O = DistillSetup;
  static const config::OptionsSpec<O> spec([] {
    std::vector<config::Binding<O>> b{
        config::no_default(config::bind<O>(
            "teacher", config::reference("models"), [](const O& o) { return o.teacher(); },
            [](O& o, std::string v) { o.teacher(std::move(v)); },
            "a model of this recipe, as trained by the stages before (the stage's own: a copy as it enters the "
            "stage)")),
        config::no_default(config::bind<O>(
            "teacher_file", config::string(), [](const O& o) { return o.teacher_file(); },
            [](O& o, std::string v) { o.teacher_file(std::move(v)); },
            "or any file shrink wrote (.pt, .pth, .h5), rebuilt from its blueprint"))};
    for (auto& k : config::flatten<O>(
             distill_options_spec(), [](const O&o) { return o.options(); },
             [](O&o, DistillOptions v) { o.options(std::move(v)); })) {
      b.push_back(std::move(k));
    }
    return b;
  }());
  return spec;
}

void validate(const DistillSetup& setup) {
  if (setup.teacher().empty() == setup.teacher_file().empty()) {
    throw core::UsageError(
        "give the teacher as `teacher` (a model of this recipe) or `teacher_file`, not both or neither");
  }
  distill_options_spec().check(setup.options(), "distill");
}

std::shared_ptr<DistillModifier> DistillModifier::attach(const DistillSetup& setup, train::ModifierContext& ctx) {
  auto teacher = setup.teacher_file().empty() ? ctx.model_named(setup.teacher())
                                              : models::restore_model(setup.teacher_file()).model;
  teacher.module->to(ctx.device);
  if (ctx.train && !ctx.train->labelled() && setup.options().kd().alpha() != 1.0) {
    throw core::UsageError(
        cat("the data has no labels: alpha must be 1 (the teacher's outputs are the only target), got ",
            setup.options().kd().alpha()));
  }
  if (setup.options().features().empty())
    return std::make_shared<DistillModifier>(teacher, setup.teacher_name(), setup.options());
  // A few training samples size the adapters (one no-grad pass of both models).
  const auto& train = ctx.train->inputs;
  return std::make_shared<DistillModifier>(teacher, setup.teacher_name(), setup.options(), ctx.model,
                                           train.narrow(0, 0, std::min<int64_t>(train.size(0), 2)));
}

std::vector<std::string> DistillModifier::companions(const DistillSetup& setup) {
  if (setup.teacher().empty()) return {};
  return {setup.teacher()};
}

void DistillModifier::check_epochs(const DistillSetup& setup, int64_t epochs, const std::string& run) {
  if (setup.options().start_epoch() >= static_cast<double>(epochs)) {
    throw core::UsageError(cat("start_epoch (", setup.options().start_epoch(), ") must fall inside the ", run));
  }
}

void DistillModifier::check(const DistillSetup& setup, torch::nn::Module& student) {
  const auto layers = models::capturable_layers(student.shared_from_this());
  for (const auto& f : setup.options().features()) {
    if (std::find(layers.begin(), layers.end(), f.student()) == layers.end()) {
      throw core::UsageError(cat("features: the student has no layer '", f.student(), "'; ",
                                 models::capturable_layers_text(student.shared_from_this(), "its")));
    }
  }
}

SHRINK_REGISTER_MODIFIER(distill, DistillModifier)

DistillModifier::DistillModifier(models::Model teacher, std::string teacher_name, DistillOptions options)
    : DistillModifier(std::move(teacher), std::move(teacher_name), std::move(options), models::Model{}, at::Tensor()) {}

DistillModifier::DistillModifier(models::Model teacher, std::string teacher_name, DistillOptions options,
                                 models::Model student, const at::Tensor& example_inputs)
    : teacher_(std::move(teacher)), teacher_name_(std::move(teacher_name)), options_(std::move(options)) {
  SHRINK_CHECK(teacher_.module, "DistillModifier needs a teacher model");
  distill_options_spec().check(options_, "distill");
  if (options_.end_epoch() >= 0 && options_.end_epoch() <= options_.start_epoch()) {
    throw core::UsageError(
        cat("end_epoch (", options_.end_epoch(), ") must be after start_epoch (", options_.start_epoch(), ")"));
  }
  if (options_.features().empty()) return;
  if (!student.module || !example_inputs.defined() || example_inputs.dim() < 1 || example_inputs.size(0) == 0) {
    throw core::UsageError(
        "feature distillation needs the student and example inputs (a non-empty batch) to size "
        "its adapters: use the constructor that takes them");
  }
  SHRINK_CHECK(student.module != teacher_.module, "a model cannot be its own teacher");
  for (const auto& f : options_.features()) {
    if (f.student().empty() || f.teacher().empty()) {
      throw core::UsageError(cat("feature pair (student '", f.student(), "', teacher '", f.teacher(),
                                 "') needs both a student and a teacher layer"));
    }
  }
  student_ = student.module;
  pad_token_id_ = student.input_dtype == at::kLong ? student.pad_token_id : -1;
  student_capture_ = std::make_unique<models::FeatureCapture>(student_, names_of(options_.features(), true));
  teacher_capture_ = std::make_unique<models::FeatureCapture>(teacher_.module, names_of(options_.features(), false));
  // Eval mode: the probe moves no batch-norm statistics and no quantization observers.
  at::NoGradGuard no_grad;
  const bool training = student_->is_training();
  student_->eval();
  teacher_.module->eval();
  student.forward(example_inputs.to(device_of(*student_, example_inputs)));
  teacher_.forward(example_inputs.to(device_of(*teacher_.module, example_inputs)));
  student_->train(training);
  for (const auto& f : options_.features()) {
    const auto& s = student_capture_->at(f.student());
    const auto& t = teacher_capture_->at(f.teacher());
    const bool spatial = s.dim() == 4, tokens = s.dim() == 3;
    if (s.dim() != t.dim() || s.dim() < 2 || s.dim() > 4 || (spatial && s.sizes().slice(2) != t.sizes().slice(2)) ||
        (tokens && s.size(1) != t.size(1))) {
      throw core::UsageError(cat("feature pair ", f.student(), " -> ", f.teacher(), ": student output ", s.sizes(),
                                 " and teacher output ", t.sizes(), " cannot be matched; pair [N, C] with [N, C], ",
                                 "[N, L, C] with the same L, or [N, C, H, W] with the same H and W"));
    }
    const int64_t channels_dim = tokens ? 2 : 1;
    auto loss = FeatureLoss(FeatureLossOptions()
                                .distance(f.distance())
                                .student_channels(s.size(channels_dim))
                                .teacher_channels(t.size(channels_dim))
                                .spatial(spatial)
                                .tokens(tokens));
    loss->to(device_of(*student_, example_inputs));
    feature_losses_.push_back(loss);
  }
  student_capture_->clear();
  teacher_capture_->clear();
}

DistillModifier::~DistillModifier() = default;

std::string DistillModifier::fingerprint() const {
  return cat("distill teacher=", teacher_name_, " ", distill_options_spec().text(options_));
}

void DistillModifier::prepare(torch::nn::Module& module) {
  SHRINK_CHECK(&module != teacher_.module.get(), "a model cannot be its own teacher");
  SHRINK_CHECK(!student_ || &module == student_.get(),
               "DistillModifier prepared on a different module than the student its adapters were sized for");
  // Its forward runs under NoGradGuard; its parameters keep requires_grad, so a later stage (or
  // the caller) can still train the teacher.
  teacher_.module->eval();
}

std::vector<at::Tensor> DistillModifier::extra_parameters() {
  std::vector<at::Tensor> params;
  for (auto& f : feature_losses_) {
    for (auto& p : f->parameters()) params.push_back(p);
  }
  return params;
}

at::Tensor DistillModifier::teacher_logits(const train::LossInputs& in) {
  const bool cacheable = options_.cache_teacher_logits() && feature_losses_.empty() && in.indices.defined();
  // The hit test reads indices on the host: from the Trainer's CPU copy, so no step waits on a GPU.
  at::Tensor host;
  int64_t max_index = -1;
  bool all_filled = true;
  if (cacheable) {
    host = (in.host_indices.defined() ? in.host_indices : in.indices.to(at::kCPU)).contiguous();
    const auto* idx = host.data_ptr<int64_t>();
    for (int64_t k = 0; k < host.numel(); ++k) {
      SHRINK_CHECK(idx[k] >= 0, "sample index ", idx[k], " is negative");
      max_index = std::max(max_index, idx[k]);
      all_filled = all_filled && idx[k] < static_cast<int64_t>(filled_.size()) && filled_[static_cast<size_t>(idx[k])];
    }
    if (cache_.defined() && all_filled) {
      ++cached_steps_;
      return cache_.index_select(0, in.indices);
    }
  }
  core::Stopwatch watch;
  at::Tensor logits;
  {
    at::NoGradGuard no_grad;
    teacher_.module->eval();  // whatever a caller did to it, the teacher stays in eval mode
    logits = teacher_.forward(in.inputs).to(in.logits.device());
  }
  teacher_seconds_ += watch.seconds();
  ++teacher_passes_;
  if (cacheable) {
    const int64_t need = max_index + 1;
    if (!cache_.defined() || need > cache_.size(0)) {
      // Grow to the largest index seen; the training set's size is not known up front.
      auto grown = at::zeros({need, logits.size(1)}, logits.options());
      if (cache_.defined()) grown.narrow(0, 0, cache_.size(0)).copy_(cache_);
      cache_ = grown;
      filled_.resize(static_cast<size_t>(need), 0);
    }
    cache_.index_copy_(0, in.indices, logits);
    const auto* idx = host.data_ptr<int64_t>();
    for (int64_t k = 0; k < host.numel(); ++k) filled_[static_cast<size_t>(idx[k])] = 1;
  }
  return logits;
}

at::Tensor DistillModifier::token_mask(const FeatureLoss& loss, const at::Tensor& states, const at::Tensor& ids) const {
  if (pad_token_id_ < 0 || !loss->options().tokens()) return {};
  // A bert drops the batch's trailing columns of padding before its layers: its states cover the
  // first L' columns of the ids.
  SHRINK_CHECK(ids.dim() == 2 && ids.scalar_type() == at::kLong && ids.size(1) >= states.size(1),
               "token hints: the inputs ", ids.sizes(), " are not the token ids of states ", states.sizes());
  return ids.narrow(1, 0, states.size(1)).ne(pad_token_id_).to(states.device());
}

at::Tensor DistillModifier::adjust_loss(const at::Tensor& loss, const train::LossInputs& in,
                                        const train::StepInfo& step) {
  const double epoch =
      static_cast<double>(step.epoch) +
      static_cast<double>(step.step_in_epoch) / static_cast<double>(std::max<int64_t>(step.steps_per_epoch, 1));
  if (!window().contains(epoch)) {
    if (student_capture_) student_capture_->clear();
    return loss;
  }
  const auto t_logits = teacher_logits(in);
  ++steps_;
  const double a = options_.kd().alpha();
  auto total = output_distance(in.logits, t_logits, options_.kd().objective(), options_.kd().temperature()) * a +
               loss * (1.0 - a);
  for (size_t i = 0; i < feature_losses_.size(); ++i) {
    const auto& f = options_.features()[i];
    if (f.weight() == 0) continue;
    const auto& s = student_capture_->at(f.student());
    total = total + feature_losses_[i]->forward(s, teacher_capture_->at(f.teacher()).to(in.logits.device()),
                                                token_mask(feature_losses_[i], s, in.inputs)) *
                        f.weight();
  }
  if (student_capture_) student_capture_->clear();
  if (teacher_capture_) teacher_capture_->clear();
  return total;
}

void DistillModifier::save(torch::serialize::OutputArchive& archive) const {
  // The cache too: a resumed run recomputing logits in other batches would round differently.
  if (cache_.defined()) {
    archive.write("teacher_logits", cache_, true);
    archive.write("teacher_logits_filled",
                  at::tensor(std::vector<int64_t>(filled_.begin(), filled_.end()), at::kLong).to(at::kBool), true);
  }
  archive.write("counts", at::tensor({steps_, teacher_passes_, cached_steps_}, at::kLong), true);
  for (size_t i = 0; i < feature_losses_.size(); ++i) {
    torch::serialize::OutputArchive sub;
    feature_losses_[i]->save(sub);
    archive.write(cat("feature_", i), sub);
  }
}

void DistillModifier::load(torch::serialize::InputArchive& archive) {
  at::Tensor cache, filled;
  if (archive.try_read("teacher_logits", cache, true) && archive.try_read("teacher_logits_filled", filled, true)) {
    SHRINK_CHECK(cache.dim() == 2 && filled.dim() == 1 && filled.size(0) == cache.size(0),
                 "checkpoint: malformed teacher-logit cache ", cache.sizes(), " / ", filled.sizes());
    const auto device =
        teacher_.module->parameters().empty() ? cache.device() : teacher_.module->parameters().front().device();
    cache_ = cache.to(device);
    const auto flags = filled.to(at::kCPU, at::kByte).contiguous();
    filled_.assign(flags.data_ptr<uint8_t>(), flags.data_ptr<uint8_t>() + flags.numel());
  }
  at::Tensor counts;
  if (archive.try_read("counts", counts, true)) {
    SHRINK_CHECK(counts.numel() == 3 && counts.scalar_type() == at::kLong, "checkpoint: malformed distill counts");
    steps_ = counts[0].item<int64_t>(), teacher_passes_ = counts[1].item<int64_t>(),
    cached_steps_ = counts[2].item<int64_t>();
  }
  for (size_t i = 0; i < feature_losses_.size(); ++i) {
    torch::serialize::InputArchive sub;
    archive.read(cat("feature_", i), sub);
    feature_losses_[i]->load(sub);
  }
}

std::shared_ptr<const train::ModifierSummary> DistillModifier::summary() const {
  auto s = std::make_shared<DistillSummary>();
  s->teacher = teacher_name_;
  s->temperature = options_.kd().temperature();
  s->alpha = options_.kd().alpha();
  s->objective = core::name_of(options_.kd().objective());
  s->distilled_steps = steps_;
  s->teacher_passes = teacher_passes_;
  s->cached_steps = cached_steps_;
  s->teacher_seconds = teacher_seconds_;
  for (size_t i = 0; i < feature_losses_.size(); ++i) {
    const auto& f = options_.features()[i];
    s->features.push_back(
        {f.student(), f.teacher(), core::name_of(f.distance()), f.weight(), feature_losses_[i]->has_adapter()});
  }
  return s;
}

}  // namespace shrink::distill
