// Training checkpoints: weights, buffers (e.g. pruning masks), optimizer state, position and RNG.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "train/modifier.h"

namespace torch::optim {
class Optimizer;
}

namespace shrink::train {

struct CheckpointState {
  int64_t epochs_done = 0;
  int64_t global_step = 0;
  // Identifies the training configuration; resuming under a different one is refused.
  std::string fingerprint;
  // fp16's loss scaler (train/precision.h); 0 when training without one.
  double loss_scale = 0;
  int64_t loss_scale_finite_steps = 0;
  // The completed epochs' summaries, so a resumed run reports its whole history (empty when read
  // from a checkpoint written before shrink kept them).
  std::vector<EpochSummary> epochs;
};

// Written atomically: an interruption mid-write leaves the previous checkpoint intact.
void save_checkpoint(const std::filesystem::path& path, const torch::nn::Module& module,
                     const torch::optim::Optimizer& optimizer, const std::vector<std::shared_ptr<Modifier>>& modifiers,
                     const CheckpointState& state);

// Restores module, optimizer, each modifier's own state and the global CPU generator; throws an Error naming the file
// when it is corrupt or was written for another configuration.
CheckpointState load_checkpoint(const std::filesystem::path& path, torch::nn::Module& module,
                                torch::optim::Optimizer& optimizer,
                                const std::vector<std::shared_ptr<Modifier>>& modifiers,
                                const std::string& expected_fingerprint);

}  // namespace shrink::train
