// The distillation modifier: during its window, each training step's loss becomes
// alpha · T² · KL(teacher ‖ student) + (1 − alpha) · the incoming loss, plus a weighted hint loss
// per feature pair. The teacher runs in eval mode with no gradients and is never updated.
#pragma once

#include <torch/arg.h>

#include <memory>
#include <string>
#include <vector>

#include "distill/kd_loss.h"
#include "models/feature_capture.h"
#include "models/model.h"
#include "train/modifier.h"

namespace shrink::distill {

// One hint: the student's layer `student` learns to match the teacher's layer `teacher` (dotted
// names as models::capturable_layers lists them).
struct FeaturePair {
  FeaturePair() = default;
  FeaturePair(std::string student, std::string teacher) : student_(std::move(student)), teacher_(std::move(teacher)) {}
  TORCH_ARG(std::string, student);
  TORCH_ARG(std::string, teacher);
  TORCH_ARG(std::string, distance) = "mse";  // mse | cosine
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

class DistillModifier : public train::Modifier {
 public:
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
  nlohmann::json summary() const override;

  // The hint losses (with their adapters), one per feature pair, sized at construction.
  const std::vector<FeatureLoss>& feature_losses() const { return feature_losses_; }

 private:
  at::Tensor teacher_logits(const train::LossInputs& in);

  models::Model teacher_;
  std::string teacher_name_;
  DistillOptions options_;
  std::shared_ptr<torch::nn::Module> student_;
  std::unique_ptr<models::FeatureCapture> student_capture_, teacher_capture_;
  std::vector<FeatureLoss> feature_losses_;
  at::Tensor cache_;  // [n, classes] teacher logits by sample index, on the teacher's device
  std::vector<uint8_t> filled_;  // [n] on the host: which rows of cache_ hold logits
  int64_t steps_ = 0, teacher_passes_ = 0, cached_steps_ = 0;
  double teacher_seconds_ = 0.0;
};

}  // namespace shrink::distill
