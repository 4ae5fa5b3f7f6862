// Per-step learning rate computation.
#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace shrink::train {

using core::cat;

const config::OptionsSpec<LrScheduleOptions>& lr_schedule_spec() {
  using O = LrScheduleOptions;
  using config::only_for;
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, name, config::one_of<LrScheduleKind>()),
       SHRINK_OPTION(O, warmup_epochs, config::number(0), "linear ramp to lr over these epochs (fractions allowed)"),
       only_for({"step"}, SHRINK_OPTION(O, step_size, config::integer(1), "epochs between decays")),
       only_for({"step"}, SHRINK_OPTION(O, gamma, config::positive(), "decay factor")),
       only_for({"cosine"}, SHRINK_OPTION(O, min_lr, config::number(0), "final learning rate"))},
      "name");
  return spec;
}

void validate(const LrScheduleOptions& o) { lr_schedule_spec().check(o, "schedule"); }

LrSchedule::LrSchedule(LrScheduleOptions options, double base_lr, int64_t steps_per_epoch, int64_t epochs)
    : options_(std::move(options)),
      base_lr_(base_lr),
      steps_per_epoch_(std::max<int64_t>(steps_per_epoch, 1)),
      total_steps_(std::max<int64_t>(steps_per_epoch_ * epochs, 1)),
      warmup_steps_(
          static_cast<int64_t>(std::llround(options_.warmup_epochs() * static_cast<double>(steps_per_epoch_)))) {
  validate(options_);
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps_) return base_lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  if (options_.name() == LrScheduleKind::kStep) {
    const int64_t epoch = step / steps_per_epoch_;
    return base_lr_ * std::pow(options_.gamma(), static_cast<double>(epoch / options_.step_size()));
  }
  if (options_.name() == LrScheduleKind::kCosine) {
    const double span = static_cast<double>(std::max<int64_t>(total_steps_ - warmup_steps_, 1));
    const double progress = std::min(1.0, static_cast<double>(step - warmup_steps_) / span);
    return options_.min_lr() + (base_lr_ - options_.min_lr()) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return base_lr_;
}

}  // namespace shrink::train
