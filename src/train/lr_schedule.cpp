// Per-step learning rate computation.
#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace shrink::train {

using core::cat;

void validate(const LrScheduleOptions& o) {
  if (o.name() != "constant" && o.name() != "step" && o.name() != "cosine") {
    throw core::UsageError(cat("schedule must be one of constant, step, cosine; got '", o.name(), "'"));
  }
  if (o.warmup_epochs() < 0) throw core::UsageError(cat("warmup_epochs must be >= 0, got ", o.warmup_epochs()));
  if (o.step_size() <= 0) throw core::UsageError(cat("step_size must be > 0, got ", o.step_size()));
  if (!(o.gamma() > 0)) throw core::UsageError(cat("gamma must be > 0, got ", o.gamma()));
  if (o.min_lr() < 0) throw core::UsageError(cat("min_lr must be >= 0, got ", o.min_lr()));
}

LrSchedule::LrSchedule(LrScheduleOptions options, double base_lr, int64_t steps_per_epoch, int64_t epochs)
    : options_(std::move(options)),
      base_lr_(base_lr),
      steps_per_epoch_(std::max<int64_t>(steps_per_epoch, 1)),
      total_steps_(std::max<int64_t>(steps_per_epoch_ * epochs, 1)),
      warmup_steps_(static_cast<int64_t>(std::llround(options_.warmup_epochs() * static_cast<double>(steps_per_epoch_)))) {
  validate(options_);
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps_) return base_lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  if (options_.name() == "step") {
    const int64_t epoch = step / steps_per_epoch_;
    return base_lr_ * std::pow(options_.gamma(), static_cast<double>(epoch / options_.step_size()));
  }
  if (options_.name() == "cosine") {
    const double span = static_cast<double>(std::max<int64_t>(total_steps_ - warmup_steps_, 1));
    const double progress = std::min(1.0, static_cast<double>(step - warmup_steps_) / span);
    return options_.min_lr() + (base_lr_ - options_.min_lr()) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return base_lr_;
}

}  // namespace shrink::train
