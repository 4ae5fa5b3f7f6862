// `shrink bench`: latency of saved models, interleaved so that their ratios are fair on a noisy
// machine, run until each median is stable or a time budget is spent.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/arg.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/model.h"
#include "report/measure.h"
#include "runtime/timing.h"

namespace shrink::report {

struct BenchOptions {
  TORCH_ARG(std::vector<int64_t>, batch_sizes) = std::vector<int64_t>{1, 64};
  TORCH_ARG(int64_t, warmup) = 5;            // untimed calls per model and batch size
  TORCH_ARG(int64_t, min_iterations) = 100;  // timed calls per model before its median may count as stable
  TORCH_ARG(double, budget_s) = 10.0;        // per batch size, all models together
  TORCH_ARG(double, stable_within) = 0.02;   // relative change of the median over a round that counts as stable
  TORCH_ARG(bool, progress) = true;
  TORCH_ARG(bool, fast_path) = true;  // each model on the path planned for it at each batch size
};

struct BenchModel {
  std::string label;
  models::Model model;
  std::vector<int64_t> sample_shape;  // one sample, without the batch dimension
  c10::Device device = c10::kCPU;
  // What it is timed on: a batch of B is these samples' first B ([N, sample_shape...]), cycled
  // where N < B. Undefined: N(0, 1) noise, or token ids of 1 for a text model. Kernels whose work
  // depends on the values (int8 inputs past their calibrated range, sparse activations) are timed
  // on noise as on data they were never calibrated for.
  at::Tensor samples;
};

// The batch of `batch` samples bench_models times `m` on (BenchModel::samples), on m.device;
// noise is drawn from `gen`. Throws where the samples do not have the model's sample shape.
at::Tensor bench_batch(const BenchModel& m, int64_t batch, at::Generator& gen);

struct BenchResult {
  std::string label;
  LatencyStat latency;
  int64_t iterations = 0;
  bool stable = false;          // false: the budget ran out first
  int64_t peak_rss_bytes = -1;  // process peak RSS during this model's warm-up; -1 when unknown
};

// For each batch size: warms each model up alone (recording the process's peak RSS), then times
// them in rounds — a few calls of each model in turn — until every model's median moved less than
// `stable_within` over two rounds in a row, or the budget is spent. Results are batch-major, models
// in the order given.
std::vector<BenchResult> bench_models(std::vector<BenchModel>& models, const BenchOptions& options);

// Which of a stage's saved files (format → path) `shrink bench RUN` and the report time, and a
// resumed run restores: the .pt, else the .h5, else the .pth.
const std::string& bench_artifact(const std::map<std::string, std::string>& artifacts);

// The process's peak resident set since the last reset, and the reset (Linux: /proc/self/status
// VmHWM, and "5" written to /proc/self/clear_refs); -1 and false where unsupported.
int64_t peak_rss_bytes();
bool reset_peak_rss();

}  // namespace shrink::report
