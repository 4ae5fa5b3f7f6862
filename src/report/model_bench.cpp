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
#include "core/stopwatch.h"
#include "models/inference_plan.h"

namespace shrink::report {

int64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   1234 kB"
  }
  return -1;
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

namespace {

struct Timing {
  at::Tensor input;
  models::ForwardFn forward;
  std::string path;
  std::vector<double> ms;
  double previous_median = -1;
  int stable_rounds = 0;
  int64_t peak = -1;
};

void sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

}  // namespace

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
    SHRINK_CHECK(batch > 0, "bench batch sizes must be > 0, got ", batch);
    std::vector<Timing> t(models.size());
    // Each round gives every model about this much time, so a fast model gets many calls per
    // round and a slow one few, and the rounds alternate quickly enough to share the noise.
    constexpr double kRoundShare = 0.02;
    std::vector<int64_t> calls(models.size(), 1);
    for (size_t i = 0; i < models.size(); ++i) {
      std::vector<int64_t> shape{batch};
      shape.insert(shape.end(), models[i].sample_shape.begin(), models[i].sample_shape.end());
      t[i].input = at::normal(0.0, 1.0, shape, gen).to(models[i].device);
      // Planned before the peak is reset: it runs both paths once, and the peak is the chosen one's.
      const auto plan = models::plan_inference(models[i].model, models[i].sample_shape, batch, models[i].device,
                                               models::InferenceOptions().fast(o.fast_path()));
      t[i].forward = plan.forward;
      t[i].path = plan.path;
      const bool reset = reset_peak_rss();
      // The median warm-up call sizes the rounds: the first call (allocation, packing) is no guide.
      std::vector<double> warm;
      for (int64_t k = 0; k < std::max<int64_t>(o.warmup(), 1); ++k) {
        core::Stopwatch one;
        t[i].forward(t[i].input);
        sync(models[i].device);
        warm.push_back(one.seconds());
      }
      const double per_call = percentile(warm, 50);
      calls[i] = std::clamp<int64_t>(static_cast<int64_t>(kRoundShare / std::max(per_call, 1e-7)), 1, 1000);
      t[i].peak = reset ? peak_rss_bytes() : -1;
    }
    core::ProgressBar bar("bench batch " + std::to_string(batch), 1000, o.progress());
    core::Stopwatch budget;
    bool all_stable = false;
    while (!all_stable && budget.seconds() < o.budget_s()) {
      all_stable = true;
      for (size_t i = 0; i < models.size(); ++i) {
        for (int64_t k = 0; k < calls[i]; ++k) {
          core::Stopwatch one;
          const auto y = t[i].forward(t[i].input);
          sync(models[i].device);
          t[i].ms.push_back(one.seconds() * 1e3);
        }
        const double median = percentile(t[i].ms, 50);
        const bool enough = static_cast<int64_t>(t[i].ms.size()) >= o.min_iterations();
        const bool steady = t[i].previous_median > 0 && std::fabs(median - t[i].previous_median) <= o.stable_within() * t[i].previous_median;
        t[i].stable_rounds = enough && steady ? t[i].stable_rounds + 1 : 0;
        t[i].previous_median = median;
        all_stable = all_stable && t[i].stable_rounds >= 2;
      }
      bar.update(std::min<int64_t>(999, static_cast<int64_t>(1000 * budget.seconds() / o.budget_s())), [&] {
        return "round of " + std::to_string(models.size()) + " models";
      });
    }
    bar.finish(all_stable ? "medians stable" : "time budget spent");
    for (size_t i = 0; i < models.size(); ++i) {
      double total_ms = 0;
      for (const double v : t[i].ms) total_ms += v;
      BenchResult r;
      r.label = models[i].label;
      r.latency = {batch, percentile(t[i].ms, 50), percentile(t[i].ms, 90), percentile(t[i].ms, 99),
                   static_cast<double>(batch) * static_cast<double>(t[i].ms.size()) / std::max(total_ms / 1e3, 1e-12),
                   t[i].path};
      r.iterations = static_cast<int64_t>(t[i].ms.size());
      r.stable = t[i].stable_rounds >= 2;
      r.peak_rss_bytes = t[i].peak;
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace shrink::report
