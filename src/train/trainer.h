// The training loop library users drive themselves, with callbacks at step and epoch boundaries.
#pragma once

#include <c10/core/Device.h>
#include <torch/arg.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "train/lr_schedule.h"
#include "train/metrics.h"
#include "train/optimizer.h"

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
  TORCH_ARG(double, grad_clip_norm) = 0.0;  // max global L2 norm of gradients; 0 = off
  // Seeds the batch order; the model's initial weights are the caller's business.
  TORCH_ARG(uint64_t, seed) = 0;
  // Where to checkpoint after each epoch; empty = no checkpoints.
  TORCH_ARG(std::string, checkpoint_path) = "";
  // Continue from checkpoint_path when it exists.
  TORCH_ARG(bool, resume) = false;
  TORCH_ARG(bool, progress) = true;
  TORCH_ARG(std::string, label) = "train";  // printed in progress lines
  TORCH_ARG(int64_t, eval_batch_size) = 1024;
};

void validate(const TrainerOptions& options);

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
  double val_loss = 0.0;      // 0 when there is no validation set
  double val_accuracy = 0.0;
  double lr = 0.0;            // at the epoch's last step
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

// Loss used for a batch; distillation replaces it.
using LossFn = std::function<at::Tensor(const at::Tensor& logits, const at::Tensor& inputs, const at::Tensor& targets)>;

struct FitResult {
  std::vector<EpochSummary> epochs;  // those run in this call (none when resumed after the end)
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
      : Trainer(model.ptr(), [m = model](const at::Tensor& x) mutable { return m->forward(x); }, std::move(options)) {}

  ~Trainer();

  void add_callback(std::shared_ptr<TrainerCallback> callback);
  // Replaces the default cross-entropy (with the configured label smoothing).
  void set_loss(LossFn loss);

  // Trains on `train`, reporting validation metrics per epoch when `val` is non-empty.
  FitResult fit(const data::Dataset& train, const data::Dataset& val = {});

  torch::nn::Module& module() { return *module_; }
  const ForwardFn& forward() const { return forward_; }
  torch::optim::Optimizer& optimizer();
  const TrainerOptions& options() const { return options_; }
  // A digest of everything that shapes the training trajectory, stored in checkpoints.
  std::string fingerprint(const data::Dataset& train) const;

 private:
  std::shared_ptr<torch::nn::Module> module_;
  ForwardFn forward_;
  TrainerOptions options_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<std::shared_ptr<TrainerCallback>> callbacks_;
  LossFn loss_;
};

}  // namespace shrink::train
