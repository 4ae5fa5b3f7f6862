// The distillation modifier: during its window, each training step's loss becomes
// alpha · T² · KL(teacher ‖ student) + (1 − alpha) · the incoming loss. The teacher runs in eval
// mode with no gradients and is never updated.
#pragma once

#include <torch/arg.h>

#include <string>

#include "distill/kd_loss.h"
#include "models/model.h"
#include "train/modifier.h"

namespace shrink::distill {

struct DistillOptions {
  TORCH_ARG(KdLossOptions, kd) = {};
  TORCH_ARG(double, start_epoch) = 0.0;
  TORCH_ARG(double, end_epoch) = -1.0;  // < 0: to the end of training
};

class DistillModifier : public train::Modifier {
 public:
  // `teacher_name` identifies the teacher in reports and the checkpoint fingerprint.
  DistillModifier(models::Model teacher, std::string teacher_name, DistillOptions options);

  std::string name() const override { return "distill"; }
  train::Window window() const override { return {options_.start_epoch(), options_.end_epoch()}; }
  std::string fingerprint() const override;
  void prepare(torch::nn::Module& module) override;
  at::Tensor adjust_loss(const at::Tensor& loss, const train::LossInputs& in, const train::StepInfo& step) override;
  nlohmann::json summary() const override;

 private:
  models::Model teacher_;
  std::string teacher_name_;
  DistillOptions options_;
  int64_t steps_ = 0;
};

}  // namespace shrink::distill
