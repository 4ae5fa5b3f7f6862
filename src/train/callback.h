// The points of a training run that callbacks and modifiers hook into.
#pragma once

#include <cstdint>

namespace shrink::train {

struct StepInfo {
  int64_t epoch = 0;          // 0-based
  int64_t step_in_epoch = 0;  // 0-based
  int64_t global_step = 0;    // 0-based, counts across epochs
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;
  double lr = 0.0;
};

struct EpochSummary {
  int64_t epoch = 0;  // 0-based
  double train_loss = 0.0;
  double train_accuracy = 0.0;
  double val_loss = 0.0;  // 0 when there is no validation set
  double val_accuracy = 0.0;
  double lr = 0.0;  // at the epoch's last step
  double seconds = 0.0;
  double samples_per_s = 0.0;
};

class Trainer;

// Hooks the pruner, QAT and distillation attach to. Every method defaults to doing nothing.
class TrainerCallback {
 public:
  virtual ~TrainerCallback() = default;
  virtual void on_train_begin(Trainer& trainer) {}
  virtual void on_step_begin(Trainer& trainer, const StepInfo& step) {}
  // After backward, before clipping and the optimizer step: gradients are available.
  virtual void on_after_backward(Trainer& trainer, const StepInfo& step) {}
  // After the optimizer step: the place to re-impose constraints on weights (e.g. masks).
  virtual void on_step_end(Trainer& trainer, const StepInfo& step) {}
  virtual void on_epoch_end(Trainer& trainer, const EpochSummary& summary) {}
  virtual void on_train_end(Trainer& trainer) {}
};

}  // namespace shrink::train
