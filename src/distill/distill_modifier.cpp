// Distillation modifier: adapters sized at construction, teacher frozen in prepare(), soft-target
// and hint losses mixed in adjust_loss(), teacher logits cached by sample index.
#include "distill/distill_modifier.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"
#include "core/stopwatch.h"

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

DistillModifier::DistillModifier(models::Model teacher, std::string teacher_name, DistillOptions options)
    : DistillModifier(std::move(teacher), std::move(teacher_name), std::move(options), models::Model{}, at::Tensor()) {}

DistillModifier::DistillModifier(models::Model teacher, std::string teacher_name, DistillOptions options,
                                 models::Model student, const at::Tensor& example_inputs)
    : teacher_(std::move(teacher)), teacher_name_(std::move(teacher_name)), options_(std::move(options)) {
  SHRINK_CHECK(teacher_.module, "DistillModifier needs a teacher model");
  validate(options_.kd());
  if (options_.end_epoch() >= 0 && options_.end_epoch() <= options_.start_epoch()) {
    throw core::UsageError(cat("end_epoch (", options_.end_epoch(), ") must be after start_epoch (",
                               options_.start_epoch(), ")"));
  }
  if (options_.features().empty()) return;
  if (!student.module || !example_inputs.defined() || example_inputs.dim() < 1 || example_inputs.size(0) == 0) {
    throw core::UsageError("feature distillation needs the student and example inputs (a non-empty batch) to size "
                           "its adapters: use the constructor that takes them");
  }
  SHRINK_CHECK(student.module != teacher_.module, "a model cannot be its own teacher");
  for (const auto& f : options_.features()) {
    if (f.student().empty() || f.teacher().empty()) {
      throw core::UsageError(cat("feature pair (student '", f.student(), "', teacher '", f.teacher(),
                                 "') needs both a student and a teacher layer"));
    }
    if (!(f.weight() >= 0)) {
      throw core::UsageError(cat("feature pair ", f.student(), " -> ", f.teacher(), ": weight must be >= 0, got ", f.weight()));
    }
  }
  student_ = student.module;
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
    const bool spatial = s.dim() == 4;
    if (s.dim() != t.dim() || (s.dim() != 2 && s.dim() != 4) || (spatial && s.sizes().slice(2) != t.sizes().slice(2))) {
      throw core::UsageError(cat("feature pair ", f.student(), " -> ", f.teacher(), ": student output ", s.sizes(),
                                 " and teacher output ", t.sizes(), " cannot be matched; pair [N, C] with [N, C] or ",
                                 "[N, C, H, W] with the same H and W"));
    }
    auto loss = FeatureLoss(FeatureLossOptions()
                                .distance(f.distance())
                                .student_channels(s.size(1))
                                .teacher_channels(t.size(1))
                                .spatial(spatial));
    loss->to(device_of(*student_, example_inputs));
    feature_losses_.push_back(loss);
  }
  student_capture_->clear();
  teacher_capture_->clear();
}

DistillModifier::~DistillModifier() = default;

std::string DistillModifier::fingerprint() const {
  std::string s = cat("distill teacher=", teacher_name_, " T=", options_.kd().temperature(), " alpha=",
                      options_.kd().alpha(), " window=", options_.start_epoch(), ":", options_.end_epoch());
  for (const auto& f : options_.features()) {
    s += cat(" feature=", f.student(), "->", f.teacher(), ",", f.distance(), ",", f.weight());
  }
  return s;
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

at::Tensor DistillModifier::adjust_loss(const at::Tensor& loss, const train::LossInputs& in, const train::StepInfo& step) {
  const double epoch = static_cast<double>(step.epoch) +
                       static_cast<double>(step.step_in_epoch) / static_cast<double>(std::max<int64_t>(step.steps_per_epoch, 1));
  if (!window().contains(epoch)) {
    if (student_capture_) student_capture_->clear();
    return loss;
  }
  const auto t_logits = teacher_logits(in);
  ++steps_;
  const double a = options_.kd().alpha();
  auto total = soft_target_loss(in.logits, t_logits, options_.kd().temperature()) * a + loss * (1.0 - a);
  for (size_t i = 0; i < feature_losses_.size(); ++i) {
    const auto& f = options_.features()[i];
    if (f.weight() == 0) continue;
    total = total + feature_losses_[i]->forward(student_capture_->at(f.student()), teacher_capture_->at(f.teacher()).to(in.logits.device())) * f.weight();
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
    const auto device = teacher_.module->parameters().empty() ? cache.device() : teacher_.module->parameters().front().device();
    cache_ = cache.to(device);
    const auto flags = filled.to(at::kCPU, at::kByte).contiguous();
    filled_.assign(flags.data_ptr<uint8_t>(), flags.data_ptr<uint8_t>() + flags.numel());
  }
  at::Tensor counts;
  if (archive.try_read("counts", counts, true)) {
    SHRINK_CHECK(counts.numel() == 3 && counts.scalar_type() == at::kLong, "checkpoint: malformed distill counts");
    steps_ = counts[0].item<int64_t>(), teacher_passes_ = counts[1].item<int64_t>(), cached_steps_ = counts[2].item<int64_t>();
  }
  for (size_t i = 0; i < feature_losses_.size(); ++i) {
    torch::serialize::InputArchive sub;
    archive.read(cat("feature_", i), sub);
    feature_losses_[i]->load(sub);
  }
}

nlohmann::json DistillModifier::summary() const {
  nlohmann::json j = {{"teacher", teacher_name_},
                      {"temperature", options_.kd().temperature()},
                      {"alpha", options_.kd().alpha()},
                      {"distilled_steps", steps_},
                      {"teacher_passes", teacher_passes_},
                      {"cached_steps", cached_steps_},
                      {"teacher_seconds", teacher_seconds_}};
  if (!options_.features().empty()) {
    auto features = nlohmann::json::array();
    for (size_t i = 0; i < feature_losses_.size(); ++i) {
      const auto& f = options_.features()[i];
      features.push_back({{"student", f.student()}, {"teacher", f.teacher()}, {"distance", f.distance()},
                          {"weight", f.weight()}, {"adapter", feature_losses_[i]->has_adapter()}});
    }
    j["features"] = features;
  }
  return j;
}

}  // namespace shrink::distill
