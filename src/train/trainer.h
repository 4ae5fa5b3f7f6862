// The training loop library users drive themselves, with callbacks at step and epoch boundaries.
#pragma once

#include <c10/core/Device.h>
#include <torch/arg.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "dist/process_group.h"
#include "train/callback.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"
#include "train/modifier.h"
#include "train/optimizer.h"
#include "train/precision.h"

namespace torch::optim {
class Optimizer;
}

namespace shrink::train {

struct TrainerOptions {
  TORCH_ARG(int64_t, epochs) = 10;
  TORCH_ARG(int64_t, batch_size) = 128;
  TORCH_ARG(OptimizerOptions, optimizer) = {};
  TORCH_ARG(LrScheduleOptions, schedule) = {};
  TORCH_ARG(double, label_smoothing) = 0.0;
  TORCH_ARG(double, grad_clip) = 0.0;  // max global L2 norm of gradients; 0 = off
  // The dtype autocast runs the forward pass and loss in (train/precision.h); fp16 needs CUDA and
  // adds dynamic loss scaling.
  TORCH_ARG(Precision, precision) = Precision::kFp32;
  TORCH_ARG(data::AugmentOptions, augment) = {};  // random flips/shifts of training batches
  // Text: batches of like-length sentences (data/loader.h); 0 = off.
  TORCH_ARG(int64_t, length_buckets) = 0;
  // Seeds the batch order; the model's initial weights are the caller's business.
  TORCH_ARG(uint64_t, seed) = 0;
  // Where to checkpoint after each epoch; empty = no checkpoints.
  TORCH_ARG(std::string, checkpoint_path) = "";
  // Continue from checkpoint_path when it exists.
  TORCH_ARG(bool, resume) = false;
  TORCH_ARG(bool, progress) = true;
  TORCH_ARG(std::string, label) = "train";  // printed in progress lines
  TORCH_ARG(int64_t, eval_batch_size) = kEvalBatch;
  // Data-parallel training: every rank of the group runs fit() on the same data with the same
  // options, and each trains on its part of every batch (batch_size stays the global batch);
  // gradients are summed over ranks during backward, buffers follow rank 0, epoch figures are the
  // group's, only rank 0 writes checkpoints. Null (or one rank) = this process alone.
  TORCH_ARG(std::shared_ptr<dist::ProcessGroup>, group) = nullptr;
};

// The recipe keys of TrainerOptions (a train stage's, a prune stage's `finetune:`); the keys for
// the run itself (seed, checkpoint_path, resume, progress, label) are the stage's to set.
const config::OptionsSpec<TrainerOptions>& training_spec();
void validate(const TrainerOptions& options);

// Loss used for a batch; distillation replaces it.
using LossFn = std::function<at::Tensor(const at::Tensor& logits, const at::Tensor& inputs, const at::Tensor& targets)>;

struct FitResult {
  // Every epoch of the run: those a resumed call restored from its checkpoint, then its own.
  std::vector<EpochSummary> epochs;
  int64_t epochs_done = 0;
  int64_t global_step = 0;
  bool resumed = false;
};

class Trainer {
 public:
  Trainer(std::shared_ptr<torch::nn::Module> module, ForwardFn forward, TrainerOptions options);

  // Convenience for module holders (torch::nn::Linear, shrink::models::Classifier, ...).
  template <class Holder>
  Trainer(Holder model, TrainerOptions options)
      : Trainer(
            model.ptr(), [m = model](const at::Tensor& x) mutable { return m->forward(x); }, std::move(options)) {}

  ~Trainer();

  // Callbacks and modifiers are called in the order they were added.
  void add_callback(std::shared_ptr<TrainerCallback> callback);
  // Modifiers must be added before the optimizer exists (the first fit() or optimizer() call):
  // they may change the module and bring parameters of their own.
  void add_modifier(std::shared_ptr<Modifier> modifier);
  const std::vector<std::shared_ptr<Modifier>>& modifiers() const { return modifiers_; }
  // Replaces the default cross-entropy (with the configured label smoothing); modifiers then
  // adjust what it returns.
  void set_loss(LossFn loss);

  // Trains on `train`, reporting validation metrics per epoch when `val` is non-empty.
  FitResult fit(const data::Dataset& train, const data::Dataset& val = {});

  torch::nn::Module& module() { return *module_; }
  const ForwardFn& forward() const { return forward_; }
  // Built on first use, after every modifier's prepare().
  torch::optim::Optimizer& optimizer();
  const TrainerOptions& options() const { return options_; }
  // A digest of everything that shapes the training trajectory, stored in checkpoints.
  std::string fingerprint(const data::Dataset& train) const;

 private:
  void prepare();

  std::shared_ptr<torch::nn::Module> module_;
  ForwardFn forward_;
  TrainerOptions options_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<std::shared_ptr<TrainerCallback>> callbacks_;
  std::vector<std::shared_ptr<Modifier>> modifiers_;
  LossFn loss_;
};

}  // namespace shrink::train
