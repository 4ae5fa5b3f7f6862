// Classification metrics: loss, top-1 accuracy, per-class accuracy and the confusion matrix.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <functional>
#include <vector>

#include "data/dataset.h"
#include "models/model.h"

namespace shrink::train {

using models::ForwardFn;

// The batch evaluation runs in unless told otherwise (the stage reports, `shrink eval`, the Trainer's
// validation): large enough to amortise each call, and small enough that a layer's output stays
// below glibc's largest mmap threshold (32 MiB, core/allocator.h), so its buffers are reused. At
// 1024 the convnet's first convolution gave 100 MB outputs, mapped and faulted in afresh each
// batch: `shrink eval` of 10,000 images took 6.75–6.97 s with 1.68 M page faults, 1.92–1.99 s at
// 128 with 56 k (one thread, a Xeon, 2026-12-07).
inline constexpr int64_t kEvalBatch = 128;

struct EvalResult {
  double loss = 0.0;      // mean cross-entropy
  double accuracy = 0.0;  // top-1, in [0, 1]
  int64_t samples = 0;
  std::vector<double> per_class_accuracy;  // NaN-free: a class absent from the set gets 0
  at::Tensor confusion;                    // int64 [classes, classes], rows = true class, columns = predicted
};

// Accumulates predictions batch by batch without a host sync per batch.
class ConfusionMeter {
 public:
  // Throws an Error when its num_classes² counts do not fit the memory budget.
  explicit ConfusionMeter(int64_t num_classes);
  static uint64_t bytes_for(int64_t num_classes);
  void add(const at::Tensor& logits, const at::Tensor& targets);
  EvalResult result(double loss_sum) const;

 private:
  int64_t classes_;
  at::Tensor confusion_;
};

// Counts correct top-1 predictions (argmax(1) == target; ties go to the first maximum and a NaN
// counts as the maximum, as at::argmax has it) batch by batch, where the logits live. A float
// [N, C] batch on the CPU is counted in one pass over its rows: at training batch sizes the four
// dispatched ops of argmax().eq().sum() and the add cost ~3 % of an MLP's step. Other batches
// (CUDA, bf16 under autocast) keep the count on their device, without a host sync per batch.
class CorrectCounter {
 public:
  void add(const at::Tensor& logits, const at::Tensor& targets);
  int64_t total() const;  // reads a device count back: call it per epoch or per progress line

 private:
  int64_t host_ = 0;
  at::Tensor device_;
};

// Runs `forward` over `data` in eval mode with gradients off; the module's training flag is
// restored afterwards. `progress`: a bar (plain lines off a terminal) labelled "eval", for
// command-line evaluations that take seconds.
EvalResult evaluate(torch::nn::Module& module, const ForwardFn& forward, const data::Dataset& data,
                    int64_t batch_size = kEvalBatch, bool progress = false);

// `forward`'s outputs over `data` in sample order, float32 on the CPU, run as evaluate runs (eval
// mode, no gradients, the training flag restored): what embedding fidelity compares.
at::Tensor collect_outputs(torch::nn::Module& module, const ForwardFn& forward, const data::Dataset& data,
                           int64_t batch_size = kEvalBatch);

}  // namespace shrink::train
