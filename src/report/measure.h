// Model measurements for reports: latency percentiles, throughput, parameter counts and sparsity.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/arg.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/options_spec.h"
#include "models/model.h"
#include "train/metrics.h"

namespace shrink::report {

struct LatencyOptions {
  TORCH_ARG(std::vector<int64_t>, batch_sizes) = std::vector<int64_t>{1, 64};
  TORCH_ARG(int64_t, warmup) = 10;
  TORCH_ARG(int64_t, iterations) = 50;
  // Time each batch size on the fastest correct path (models/inference_plan.h); false: the
  // module's own forward. The same timing as `shrink bench`'s (report/model_bench.h).
  TORCH_ARG(bool, fast_path) = true;
};

// The recipe keys of LatencyOptions (`report:`).
const config::OptionsSpec<LatencyOptions>& latency_spec();

struct LatencyStat {
  int64_t batch = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0;
  double samples_per_s = 0;    // batch × iterations / total timed seconds
  std::string path = "plain";  // the inference path timed (InferencePlan::path)
};

// Times the model on a batch of `samples` (BenchModel::samples: the first `batch`, cycled; the
// run's test data), or on N(0, 1) noise of shape [batch, sample_shape...] where they are undefined,
// in eval mode with gradients off, on the path planned for that batch size, as `shrink bench` times
// it (bench_models, one model): `warmup` untimed calls, then rounds of timed ones until at least
// `iterations` were timed and the median holds within kLatencyStableWithin, or
// kLatencyBudgetSeconds per batch size went by (percentiles by nearest rank). Looser than
// `shrink bench`'s defaults: a report times every stage, a bench is asked for.
std::vector<LatencyStat> measure_latency(const models::Model& model, const std::vector<int64_t>& sample_shape,
                                         const at::Tensor& samples, const c10::Device& device,
                                         const LatencyOptions& options);

inline constexpr double kLatencyBudgetSeconds = 1.0;
inline constexpr double kLatencyStableWithin = 0.05;

struct ParamStats {
  int64_t params = 0;
  int64_t nonzero_params = 0;
  double sparsity = 0.0;  // 1 - nonzero / params
};

// Parameters and int8 weights (buffers of int8 layers) together.
ParamStats count_params(const torch::nn::Module& module);

struct LayerStat;
// Shape, nonzero count and sparsity of every parameter (or int8 weight) of rank >= 2.
std::vector<LayerStat> layer_stats(const torch::nn::Module& module);

}  // namespace shrink::report
