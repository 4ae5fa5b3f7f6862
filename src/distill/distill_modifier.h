// The distillation modifier: during its window, each training step's loss becomes
// alpha · T² · KL(teacher ‖ student) + (1 − alpha) · the incoming loss, plus a weighted hint loss
// per feature pair. The teacher runs in eval mode with no gradients and is never updated.
#pragma once

#include <torch/arg.h>

#include <memory>
#include <string>
#include <vector>

#include "distill/distill_summary.h"
#include "distill/kd_loss.h"
#include "models/feature_capture.h"
#include "models/model.h"
#include "train/modifier.h"
#include "train/modifier_kind.h"

namespace shrink::distill {

// One hint: the student's layer `student` learns to match the teacher's layer `teacher` (dotted
// names as models::capturable_layers lists them).
struct FeaturePair {
  FeaturePair() = default;
  FeaturePair(std::string student, std::string teacher) : student_(std::move(student)), teacher_(std::move(teacher)) {}
  TORCH_ARG(std::string, student);
  TORCH_ARG(std::string, teacher);
  TORCH_ARG(FeatureDistance, distance) = FeatureDistance::kMse;
  TORCH_ARG(double, weight) = 1.0;
};

struct DistillOptions {
  TORCH_ARG(KdLossOptions, kd) = {};
  TORCH_ARG(double, start_epoch) = 0.0;
  TORCH_ARG(double, end_epoch) = -1.0;  // < 0: to the end of training
  TORCH_ARG(std::vector<FeaturePair>, features) = {};
  // Reuse each sample's teacher logits after the first time: valid while a sample's input is the
  // same every epoch (no random augmentation). Needs steps that carry sample indices (the Trainer's
  // do); without them, and with feature pairs (whose teacher outputs are not kept), the teacher
  // runs every step.
  TORCH_ARG(bool, cache_teacher_logits) = true;
};

// The keys of one feature pair, and of DistillOptions (the KD settings side by side).
const config::OptionsSpec<FeaturePair>& feature_pair_spec();
const config::OptionsSpec<DistillOptions>& distill_options_spec();

// A distill modifier as a recipe gives it: the teacher by reference — a model of the run (resolved
// through ModifierContext::model_named) or a file shrink wrote — and its options.
struct DistillSetup {
  // The teacher as reports name it: the model's name or the file's path.
  const std::string& teacher_name() const { return teacher_.empty() ? teacher_file_ : teacher_; }
  TORCH_ARG(std::string, teacher) = "";
  TORCH_ARG(std::string, teacher_file) = "";
  TORCH_ARG(DistillOptions, options) = {};
};
// A distill modifier's recipe keys (teacher, teacher_file and DistillOptions' keys).
const config::OptionsSpec<DistillSetup>& distill_setup_spec();
// Throws a UsageError unless exactly one teacher is given and the options are in range.
void validate(const DistillSetup& setup);

// Recipes name it `distill` (train/modifier_kind.h).
class DistillModifier : public train::Modifier {
 public:
  using Options = DistillSetup;
  static const config::OptionsSpec<DistillSetup>& spec() { return distill_setup_spec(); }
  // The teacher resolved (a file restored), on ctx.device; feature pairs sized on a few training samples.
  static std::shared_ptr<DistillModifier> attach(const DistillSetup& setup, train::ModifierContext& ctx);
  static void check_epochs(const DistillSetup& setup, int64_t epochs, const std::string& run);
  // Every feature pair's student layer must exist in the model.
  static void check(const DistillSetup& setup, torch::nn::Module& student);
  // The teacher when it is a model of the recipe (a teacher_file is bounded by its reader).
  static std::vector<std::string> companions(const DistillSetup& setup);

  // `teacher_name` identifies the teacher in reports and the checkpoint fingerprint.
  DistillModifier(models::Model teacher, std::string teacher_name, DistillOptions options);
  // Feature pairs need this one: `student` is the model being trained and `example_inputs` a batch
  // of any size; one no-grad pass of both models in eval mode sizes the adapters here, so the
  // optimizer can be given extra_parameters() before training. Without feature pairs both are unused.
  DistillModifier(models::Model teacher, std::string teacher_name, DistillOptions options, models::Model student,
                  const at::Tensor& example_inputs);
  ~DistillModifier() override;

  std::string name() const override { return "distill"; }
  train::Window window() const override { return {options_.start_epoch(), options_.end_epoch()}; }
  std::string fingerprint() const override;
  void prepare(torch::nn::Module& module) override;
  std::vector<at::Tensor> extra_parameters() override;
  at::Tensor adjust_loss(const at::Tensor& loss, const train::LossInputs& in, const train::StepInfo& step) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  std::shared_ptr<const train::ModifierSummary> summary() const override;

  const models::Model& teacher() const { return teacher_; }
  // The hint losses (with their adapters), one per feature pair, sized at construction.
  const std::vector<FeatureLoss>& feature_losses() const { return feature_losses_; }

 private:
  at::Tensor teacher_logits(const train::LossInputs& in);
  // True at the tokens of `ids` the student's token `states` cover; undefined when no padding is known.
  at::Tensor token_mask(const FeatureLoss& loss, const at::Tensor& states, const at::Tensor& ids) const;

  models::Model teacher_;
  std::string teacher_name_;
  DistillOptions options_;
  std::shared_ptr<torch::nn::Module> student_;
  // The student's padding id (token ids): token hints leave padding out. -1: every position counts.
  int64_t pad_token_id_ = -1;
  std::unique_ptr<models::FeatureCapture> student_capture_, teacher_capture_;
  std::vector<FeatureLoss> feature_losses_;
  at::Tensor cache_;             // [n, classes] teacher logits by sample index, on the teacher's device
  std::vector<uint8_t> filled_;  // [n] on the host: which rows of cache_ hold logits
  int64_t steps_ = 0, teacher_passes_ = 0, cached_steps_ = 0;
  double teacher_seconds_ = 0.0;
};

}  // namespace shrink::distill
