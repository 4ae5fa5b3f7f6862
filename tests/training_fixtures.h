// Shared training fixtures: the small, seeded Trainer settings the unit tests train with, and a
// callback that simulates a process killed partway through a run.
#pragma once

#include <stdexcept>

#include "train/trainer.h"

namespace shrink::testing {

// SGD (lr 0.05, momentum 0.9), batch 32, seed 5, no progress output.
inline train::TrainerOptions small_training(int64_t epochs) {
  return train::TrainerOptions()
      .epochs(epochs)
      .batch_size(32)
      .optimizer(train::OptimizerOptions().name("sgd").lr(0.05).momentum(0.9))
      .seed(5)
      .progress(false);
}

// Throws at the first step of epoch `epoch`, as a kill would stop the run there.
struct KillAtEpoch : train::TrainerCallback {
  explicit KillAtEpoch(int64_t epoch) : epoch(epoch) {}
  void on_step_begin(train::Trainer&, const train::StepInfo& s) override {
    if (s.epoch == epoch) throw std::runtime_error("killed");
  }
  int64_t epoch;
};

}  // namespace shrink::testing
