// KD losses on ATen ops; the teacher side is detached so no gradient can reach it.
#include "distill/kd_loss.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace shrink::distill {

using core::cat;

const config::OptionsSpec<KdLossOptions>& kd_loss_spec() {
  using O = KdLossOptions;
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, temperature, config::number(0.01, 100), "T: softens teacher and student distributions"),
       SHRINK_OPTION(O, alpha, config::number(0, 1), "weight of the soft-target term; 1 - alpha on the stage's loss"),
       SHRINK_OPTION(O, objective, config::one_of<DistillObjective>(),
                     "logits: softened KL; cosine or mse: the outputs as embeddings (data without labels: alpha 1)")});
  return spec;
}

void validate(const KdLossOptions& o) { kd_loss_spec().check(o, "distill"); }

at::Tensor soft_target_loss(const at::Tensor& student, const at::Tensor& teacher, double t) {
  SHRINK_CHECK(t > 0, "temperature must be > 0, got ", t);
  SHRINK_CHECK(student.sizes() == teacher.sizes(), "student logits ", student.sizes(), " and teacher logits ",
               teacher.sizes(), " differ in shape");
  SHRINK_CHECK(student.dim() == 2 && student.size(0) > 0, "logits must be [batch, classes], got ", student.sizes());
  const auto log_p_student = at::log_softmax(student / t, 1);
  const auto log_p_teacher = at::log_softmax(teacher.detach() / t, 1);
  // KL(p_t ‖ p_s) = Σ p_t (log p_t − log p_s), summed over classes, averaged over the batch.
  const auto kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum() / static_cast<double>(student.size(0));
  return kl * (t * t);
}

at::Tensor kd_loss(const at::Tensor& student, const at::Tensor& teacher, const at::Tensor& targets,
                   const KdLossOptions& o) {
  validate(o);
  const auto hard = at::cross_entropy_loss(student, targets);
  if (o.alpha() == 0) return hard;
  return output_distance(student, teacher, o.objective(), o.temperature()) * o.alpha() + hard * (1.0 - o.alpha());
}

at::Tensor output_distance(const at::Tensor& student, const at::Tensor& teacher, DistillObjective objective,
                           double temperature) {
  if (objective == DistillObjective::kLogits) return soft_target_loss(student, teacher, temperature);
  SHRINK_CHECK(student.sizes() == teacher.sizes(), "student outputs ", student.sizes(), " and teacher outputs ",
               teacher.sizes(), " differ in shape");
  SHRINK_CHECK(student.dim() == 2 && student.size(0) > 0, "outputs must be [batch, features], got ", student.sizes());
  const auto t = teacher.detach();
  if (objective == DistillObjective::kMse) return (student - t).pow(2).mean();
  // eps as torch.nn.functional.cosine_similarity's: a zero vector scores 0, not NaN.
  return 1.0 - at::cosine_similarity(student, t, 1, 1e-8).mean();
}

FeatureLossImpl::FeatureLossImpl(FeatureLossOptions o) : options_(std::move(o)) {
  const auto s = options_.student_channels(), t = options_.teacher_channels();
  if (s < 0 || t < 0) throw core::UsageError(cat("channel counts must be >= 0, got ", s, " and ", t));
  if (options_.spatial() && options_.tokens()) {
    throw core::UsageError("feature loss: features are spatial [N, C, H, W] or tokens [N, L, C], not both");
  }
  if (s > 0 && t > 0 && s != t) {
    if (options_.spatial()) {
      conv_ = register_module("adapter", torch::nn::Conv2d(torch::nn::Conv2dOptions(s, t, 1).bias(false)));
    } else {
      linear_ = register_module("adapter", torch::nn::Linear(s, t));
    }
  }
}

at::Tensor FeatureLossImpl::forward(const at::Tensor& student, const at::Tensor& teacher_in,
                                    const at::Tensor& token_mask) {
  const auto teacher = teacher_in.detach();
  at::Tensor s = student;
  if (conv_) s = conv_->forward(s);
  if (linear_) s = linear_->forward(s);
  SHRINK_CHECK(s.sizes() == teacher.sizes(), "feature distillation: student features ", s.sizes(),
               (has_adapter() ? " (after the adapter)" : ""), " and teacher features ", teacher.sizes(),
               " differ in shape; set student_channels and teacher_channels for an adapter");
  if (token_mask.defined()) {
    SHRINK_CHECK(options_.tokens(), "feature distillation: a token mask needs token features [N, L, C]");
    SHRINK_CHECK(token_mask.dim() == 2 && token_mask.size(0) == s.size(0) && token_mask.size(1) == s.size(1),
                 "feature distillation: the token mask ", token_mask.sizes(), " does not match the features ",
                 s.sizes());
    const auto m = token_mask.to(s.scalar_type()).unsqueeze(-1);
    if (options_.distance() == FeatureDistance::kMse) {
      // The mean over the tokens of each token's mean squared difference (as examples/distill_bert.cpp).
      return ((s - teacher).pow(2) * m).sum() / (m.sum().clamp_min(1) * s.size(2));
    }
    return (1 - at::cosine_similarity((s * m).flatten(1), (teacher * m).flatten(1), 1, 1e-8)).mean();
  }
  if (options_.distance() == FeatureDistance::kMse) return at::mse_loss(s, teacher);
  return (1 - at::cosine_similarity(s.flatten(1), teacher.flatten(1), 1, 1e-8)).mean();
}

}  // namespace shrink::distill
