// Interleaved latency rounds with a stability rule and a time budget.
#include "report/model_bench.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/error.h"
#include "core/progress.h"
#include "models/inference_plan.h"
#include "runtime/timing.h"

namespace shrink::report {

int64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   1234 kB"
  }
  return -1;
}

const std::string& bench_artifact(const std::map<std::string, std::string>& artifacts) {
  // The .onnx and the TorchScript file sit beside a state_dict file; restore_model reads neither.
  for (const char* format : {"pt", "h5", "pth"}) {
    const auto it = artifacts.find(format);
    if (it != artifacts.end()) return it->second;
  }
  throw core::Error("the stage saved no model file shrink restores (.pt, .h5 or .pth)");
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

at::Tensor bench_batch(const BenchModel& m, int64_t batch, at::Generator& gen) {
  SHRINK_CHECK(batch > 0, "bench batch sizes must be > 0, got ", batch);
  const auto shape = models::batch_shape(batch, m.sample_shape);
  if (!m.samples.defined()) {
    // Token ids are timed on ones: an encoder's time depends on the ids' count, not their values.
    return m.model.input_dtype == at::kLong ? models::placeholder_input(m.model, shape, m.device)
                                            : at::normal(0.0, 1.0, shape, gen).to(m.device);
  }
  const auto sizes = m.samples.sizes();
  SHRINK_CHECK(sizes.size() == m.sample_shape.size() + 1 && sizes.slice(1) == c10::IntArrayRef(m.sample_shape),
               "bench: ", m.label, ": samples of shape ", sizes, " for a model whose samples are ",
               c10::IntArrayRef(m.sample_shape));
  SHRINK_CHECK(sizes[0] > 0, "bench: ", m.label, ": no samples to time on");
  const auto rows = at::remainder(at::arange(batch, at::kLong), sizes[0]);
  return m.samples.index_select(0, rows.to(m.samples.device())).contiguous().to(m.device);
}

std::vector<BenchResult> bench_models(std::vector<BenchModel>& models, const BenchOptions& o) {
  SHRINK_CHECK(!models.empty(), "no models to benchmark");
  SHRINK_CHECK(o.budget_s() > 0, "bench budget must be > 0 s, got ", o.budget_s());
  SHRINK_CHECK(o.min_iterations() > 0, "bench min_iterations must be > 0, got ", o.min_iterations());
  SHRINK_CHECK(o.warmup() >= 0, "bench warmup must be >= 0, got ", o.warmup());
  SHRINK_CHECK(o.stable_within() > 0, "bench stable_within must be > 0, got ", o.stable_within());
  torch::NoGradGuard no_grad;
  for (auto& m : models) m.model.module->eval();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  std::vector<BenchResult> out;
  for (const int64_t batch : o.batch_sizes()) {
    std::vector<std::function<void()>> calls;
    std::vector<std::string> paths;
    for (auto& m : models) {
      const auto input = bench_batch(m, batch, gen);
      // Planned before the peak is reset: it runs both paths once, and the peak is the chosen one's.
      const auto plan = models::plan_inference(m.model, m.sample_shape, batch, m.device,
                                               models::InferenceOptions().fast(o.fast_path()));
      paths.push_back(plan.path);
      calls.push_back([forward = plan.forward, input, device = m.device] {
        const auto y = forward(input);
        if (device.is_cuda()) torch::cuda::synchronize();
      });
    }
    std::vector<int64_t> peaks(models.size(), -1);
    std::vector<bool> reset(models.size(), false);
    core::ProgressBar bar("bench batch " + std::to_string(batch), 1000, o.progress());
    runtime::TimingHooks hooks;
    hooks.before_warmup = [&](size_t i) { reset[i] = reset_peak_rss(); };
    hooks.after_warmup = [&](size_t i) { peaks[i] = reset[i] ? peak_rss_bytes() : -1; };
    hooks.after_round = [&](double spent) {
      bar.update(std::min<int64_t>(999, static_cast<int64_t>(1000 * spent)),
                 [&] { return "round of " + std::to_string(models.size()) + " models"; });
    };
    // Each round gives every model about this much time, so a fast model gets many calls per
    // round and a slow one few, and the rounds alternate quickly enough to share the noise.
    constexpr double kRoundShare = 0.02;
    const auto timings = runtime::time_interleaved(calls,
                                                   runtime::TimingOptions()
                                                       .warmup(std::max<int64_t>(o.warmup(), 1))
                                                       .min_calls(o.min_iterations())
                                                       .stable_within(o.stable_within())
                                                       .budget_s(o.budget_s())
                                                       .round_s(kRoundShare),
                                                   hooks);
    bool all_settled = true;
    for (const auto& t : timings) all_settled = all_settled && t.settled;
    bar.finish(all_settled ? "medians stable" : "time budget spent");
    for (size_t i = 0; i < models.size(); ++i) {
      const auto& t = timings[i];
      BenchResult r;
      r.label = models[i].label;
      r.latency = {
          batch,
          t.percentile_ms(50),
          t.percentile_ms(90),
          t.percentile_ms(99),
          static_cast<double>(batch) * static_cast<double>(t.seconds.size()) / std::max(t.total_seconds(), 1e-12),
          paths[i]};
      r.iterations = static_cast<int64_t>(t.seconds.size());
      r.stable = t.settled;
      r.peak_rss_bytes = peaks[i];
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace shrink::report
