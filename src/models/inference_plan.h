// Inference on the fastest correct path this build offers: a model is compiled once per batch
// size into a chain of fast ops (oneDNN-prepacked convolutions with BatchNorm folded in and ReLU
// fused, GEMV for one sample, shrink's CSR kernel for pruned Linear layers), checked against the
// module's own forward and timed against it; the faster of the two is used.
#pragma once

#include <c10/core/Device.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/model.h"

namespace shrink::models {

// The largest difference between the fast path's logits and the module's own, relative to the
// largest logit (at least 1): oneDNN's convolutions and folded BatchNorm sum in another order,
// which moves fp32 logits by ~1e-6 relative here; a fast path off by more is not used.
constexpr double kMaxFastPathError = 1e-4;
// The same for models with int8 layers run on the CSR kernel: it dequantizes the input and sums in
// fp32, so a few outputs round to the neighbouring int8 step.
constexpr double kMaxFastPathInt8Error = 0.05;

struct InferenceOptions {
  TORCH_ARG(bool, fast) = true;  // false: always the module's own forward ("plain")
  // Pruned Linear layers at least this sparse are timed on the CSR kernel as well as dense, and
  // the faster kept. Below it the dense kernels win on this machine (bench: BM_CsrLinear).
  TORCH_ARG(double, min_sparsity) = 0.5;
  // false: every Linear at least min_sparsity sparse runs on CSR without timing it (tests).
  TORCH_ARG(bool, measure_sparse) = true;
  // Timed calls of each candidate when choosing, at the least: short calls go on until each
  // candidate has run for 2 ms.
  TORCH_ARG(int64_t, trial_calls) = 7;
};

struct InferencePlan {
  train::ForwardFn forward;  // the chosen path
  std::string path;          // "plain", or the candidate's ops
  // The fast candidate (empty when none was built) and its ops in order of first use, e.g.
  // "onednn-conv, addmv" or "csr-linear, linear".
  train::ForwardFn candidate;
  std::string candidate_path;
  double max_error = 0.0;  // of the candidate against the plain path on the probe batch (relative)
  double plain_ms = 0.0, fast_ms = 0.0;  // median trial calls; 0 when not timed (no candidate, or off by more than the tolerance)
};

// Plans `model` for batches of `batch` samples of `sample_shape` on `device`, in eval mode with
// gradients off. The plan holds folded copies of the weights: plan again after they change.
// Models that are not shrink Classifiers, or have nothing to speed up, run plain.
InferencePlan plan_inference(const Model& model, const std::vector<int64_t>& sample_shape, int64_t batch,
                             const c10::Device& device, const InferenceOptions& options = {});

}  // namespace shrink::models
