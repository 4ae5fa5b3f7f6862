// A training run's curve as reports keep it: one point per epoch, whether it was resumed, its steps.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace shrink::train {

struct FitResult;  // train/trainer.h

// One epoch as the Trainer summarised it (epoch is 1-based here).
struct EpochPoint {
  int64_t epoch = 0;
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0;  // 0 when the run had no validation set
  double lr = 0, seconds = 0, samples_per_s = 0;
};

struct TrainingHistory {
  std::vector<EpochPoint> epochs;
  bool resumed = false;
  int64_t steps = 0;

  nlohmann::json to_json() const;
  // Throws nlohmann::json's exceptions on a malformed entry (the report reader names the file).
  static TrainingHistory from_json(const nlohmann::json& j);
};

// The history of one fit() call.
TrainingHistory history_of(const FitResult& result);
// Its epochs back as the Trainer's summaries (0-based epochs): what checkpoints keep.
struct EpochSummary;  // train/callback.h
std::vector<EpochSummary> summaries_of(const TrainingHistory& history);

}  // namespace shrink::train
