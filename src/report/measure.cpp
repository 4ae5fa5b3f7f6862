// Latency and parameter measurement.
#include "report/measure.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "report/model_bench.h"
#include "report/report.h"

namespace shrink::report {

const config::OptionsSpec<LatencyOptions>& latency_spec() {
  using O = LatencyOptions;
  static const config::OptionsSpec<O> spec(
      {config::bind<O>(
           "latency_batch_sizes", config::list_of(config::integer(1, 65536), 1),
           [](const O& o) { return o.batch_sizes(); },
           [](O& o, std::vector<int64_t> v) { o.batch_sizes(std::move(v)); }),
       SHRINK_OPTION(O, warmup, config::integer(0, 100000)), SHRINK_OPTION(O, iterations, config::integer(1, 1000000)),
       SHRINK_OPTION(O, fast_path, config::boolean(),
                     "evaluate and time on the fastest correct path (oneDNN conv; packed, GEMV or CSR Linear); false: "
                     "the module's own forward")});
  return spec;
}

std::vector<LatencyStat> measure_latency(const models::Model& model, const std::vector<int64_t>& sample_shape,
                                         const at::Tensor& samples, const c10::Device& device,
                                         const LatencyOptions& options) {
  SHRINK_CHECK(options.iterations() > 0, "latency iterations must be > 0, got ", options.iterations());
  SHRINK_CHECK(options.warmup() >= 0, "latency warmup must be >= 0, got ", options.warmup());
  const bool was_training = model.module->is_training();
  // The same timing `shrink bench` does, on one model: warm-up, then rounds until the median holds.
  std::vector<BenchModel> one{{"", model, sample_shape, device, samples}};
  const auto results = bench_models(one, BenchOptions()
                                             .batch_sizes(options.batch_sizes())
                                             .warmup(options.warmup())
                                             .min_iterations(options.iterations())
                                             .budget_s(kLatencyBudgetSeconds)
                                             .stable_within(kLatencyStableWithin)
                                             .progress(false)
                                             .fast_path(options.fast_path()));
  model.module->train(was_training);
  std::vector<LatencyStat> out;
  for (const auto& r : results) out.push_back(r.latency);
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
