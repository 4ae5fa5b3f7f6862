// Learning-rate schedules evaluated per step: constant, step decay, cosine; all with linear warm-up.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "config/options_spec.h"
#include "core/enum_names.h"

namespace shrink::train {

enum class LrScheduleKind { kConstant, kStep, kCosine };
inline const core::EnumNames<LrScheduleKind>& enum_names(LrScheduleKind) {
  static const core::EnumNames<LrScheduleKind> names{
      {LrScheduleKind::kConstant, "constant"}, {LrScheduleKind::kStep, "step"}, {LrScheduleKind::kCosine, "cosine"}};
  return names;
}

struct LrScheduleOptions {
  TORCH_ARG(LrScheduleKind, name) = LrScheduleKind::kConstant;
  TORCH_ARG(double, warmup_epochs) = 0.0;  // linear ramp from lr/steps to lr
  TORCH_ARG(int64_t, step_size) = 10;      // step: epochs between decays
  TORCH_ARG(double, gamma) = 0.1;          // step: decay factor
  TORCH_ARG(double, min_lr) = 0.0;         // cosine: final learning rate
};

class LrSchedule {
 public:
  LrSchedule(LrScheduleOptions options, double base_lr, int64_t steps_per_epoch, int64_t epochs);
  // Learning rate for 0-based global step `step`.
  double at(int64_t step) const;

 private:
  LrScheduleOptions options_;
  double base_lr_;
  int64_t steps_per_epoch_;
  int64_t total_steps_;
  int64_t warmup_steps_;
};

// The recipe keys of LrScheduleOptions (`schedule:`).
const config::OptionsSpec<LrScheduleOptions>& lr_schedule_spec();
void validate(const LrScheduleOptions& options);

}  // namespace shrink::train
