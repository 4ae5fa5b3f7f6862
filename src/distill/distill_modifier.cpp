// Distillation modifier: teacher frozen in prepare(), soft-target loss mixed in adjust_loss().
#include "distill/distill_modifier.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace shrink::distill {

using core::cat;

DistillModifier::DistillModifier(models::Model teacher, std::string teacher_name, DistillOptions options)
    : teacher_(std::move(teacher)), teacher_name_(std::move(teacher_name)), options_(std::move(options)) {
  SHRINK_CHECK(teacher_.module, "DistillModifier needs a teacher model");
  validate(options_.kd());
  if (options_.end_epoch() >= 0 && options_.end_epoch() <= options_.start_epoch()) {
    throw core::UsageError(cat("end_epoch (", options_.end_epoch(), ") must be after start_epoch (",
                               options_.start_epoch(), ")"));
  }
}

std::string DistillModifier::fingerprint() const {
  return cat("distill teacher=", teacher_name_, " T=", options_.kd().temperature(), " alpha=", options_.kd().alpha(),
             " window=", options_.start_epoch(), ":", options_.end_epoch());
}

void DistillModifier::prepare(torch::nn::Module& module) {
  SHRINK_CHECK(&module != teacher_.module.get(), "a model cannot be its own teacher");
  teacher_.module->eval();
  for (auto& p : teacher_.module->parameters()) p.set_requires_grad(false);
}

at::Tensor DistillModifier::adjust_loss(const at::Tensor& loss, const train::LossInputs& in, const train::StepInfo& step) {
  const double epoch = static_cast<double>(step.epoch) +
                       static_cast<double>(step.step_in_epoch) / static_cast<double>(std::max<int64_t>(step.steps_per_epoch, 1));
  if (!window().contains(epoch)) return loss;
  at::Tensor teacher_logits;
  {
    at::NoGradGuard no_grad;
    teacher_.module->eval();  // whatever a caller did to it, the teacher stays in eval mode
    teacher_logits = teacher_.forward(in.inputs).to(in.logits.device());
  }
  ++steps_;
  const double a = options_.kd().alpha();
  return soft_target_loss(in.logits, teacher_logits, options_.kd().temperature()) * a + loss * (1.0 - a);
}

nlohmann::json DistillModifier::summary() const {
  return {{"teacher", teacher_name_},
          {"temperature", options_.kd().temperature()},
          {"alpha", options_.kd().alpha()},
          {"distilled_steps", steps_}};
}

}  // namespace shrink::distill
