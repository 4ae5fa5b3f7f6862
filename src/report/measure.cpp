// Latency and parameter measurement.
#include "report/measure.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/stopwatch.h"
#include "models/inference_plan.h"
#include "report/report.h"

namespace shrink::report {

double percentile(std::vector<double> values, double p) {
  SHRINK_CHECK(!values.empty(), "percentile of no values");
  SHRINK_CHECK(p >= 0 && p <= 100, "percentile must be in [0, 100], got ", p);
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[rank == 0 ? 0 : rank - 1];
}

std::vector<LatencyStat> measure_latency(const models::Model& model, const std::vector<int64_t>& sample_shape,
                                         const c10::Device& device, const LatencyOptions& options) {
  SHRINK_CHECK(options.iterations() > 0, "latency iterations must be > 0, got ", options.iterations());
  SHRINK_CHECK(options.warmup() >= 0, "latency warmup must be >= 0, got ", options.warmup());
  auto& module = *model.module;
  const bool was_training = module.is_training();
  module.eval();
  torch::NoGradGuard no_grad;
  const auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  std::vector<LatencyStat> out;
  for (int64_t batch : options.batch_sizes()) {
    SHRINK_CHECK(batch > 0, "latency batch sizes must be > 0, got ", batch);
    std::vector<int64_t> shape = {batch};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    const auto input = at::normal(0.0, 1.0, shape, gen).to(device);
    const auto plan = models::plan_inference(model, sample_shape, batch, device,
                                             models::InferenceOptions().fast(options.fast_path()));
    const auto& forward = plan.forward;
    for (int64_t i = 0; i < options.warmup(); ++i) forward(input);
    sync();
    std::vector<double> ms;
    ms.reserve(static_cast<size_t>(options.iterations()));
    core::Stopwatch total;
    for (int64_t i = 0; i < options.iterations(); ++i) {
      core::Stopwatch one;
      const auto y = forward(input);
      sync();
      ms.push_back(one.seconds() * 1e3);
    }
    const double seconds = total.seconds();
    out.push_back(LatencyStat{batch, percentile(ms, 50), percentile(ms, 90), percentile(ms, 99),
                              static_cast<double>(batch * options.iterations()) / std::max(seconds, 1e-12),
                              plan.path});
  }
  module.train(was_training);
  return out;
}

namespace {

// Parameters, and the int8 weights of quantized layers (stored as buffers: nothing trains them).
std::vector<std::pair<std::string, at::Tensor>> weights_of(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) {
    if (b.value().scalar_type() == at::kChar) out.emplace_back(b.key(), b.value());
  }
  return out;
}

}  // namespace

ParamStats count_params(const torch::nn::Module& module) {
  ParamStats s;
  for (const auto& [name, p] : weights_of(module)) {
    s.params += p.numel();
    s.nonzero_params += p.count_nonzero().item<int64_t>();
  }
  s.sparsity = s.params ? 1.0 - static_cast<double>(s.nonzero_params) / static_cast<double>(s.params) : 0.0;
  return s;
}

std::vector<LayerStat> layer_stats(const torch::nn::Module& module) {
  std::vector<LayerStat> out;
  for (const auto& [name, p] : weights_of(module)) {
    if (p.dim() < 2) continue;
    LayerStat l;
    l.name = name;
    l.shape = p.sizes().vec();
    l.numel = p.numel();
    l.nonzero = p.count_nonzero().item<int64_t>();
    l.sparsity = l.numel ? 1.0 - static_cast<double>(l.nonzero) / static_cast<double>(l.numel) : 0.0;
    out.push_back(l);
  }
  return out;
}

}  // namespace shrink::report
