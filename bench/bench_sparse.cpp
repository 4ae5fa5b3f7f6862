// Pruned Linear layers: shrink's CSR kernel on each of its paths against the best dense kernel for
// the same 300×784 layer (addmv for one sample, at::linear for a batch), interleaved call by call
// so that the ratios share the machine's noise, across sparsities.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "bench_stats.h"
#include "bench_threads.h"
#include "core/threads.h"
#include "runtime/csr_linear.h"
#include "runtime/timing.h"

using namespace shrink;
namespace pr = shrink::runtime;

namespace {

using bench::median;

// Args: batch, sparsity in per mille. Counters: median µs of dense and of each CSR path this CPU
// has, and each path's speed-up over dense.
void BM_CsrLinear(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  const int64_t batch = state.range(0);
  torch::manual_seed(0);
  const auto w = torch::randn({300, 784}) * 0.05 * (torch::rand({300, 784}) >= state.range(1) / 1000.0);
  const auto b = torch::randn({300});
  const auto x = torch::randn({batch, 784});
  const auto csr = pr::csr_from_dense(w, b);
  auto y = torch::empty({batch, 300});
  std::vector<std::pair<std::string, std::function<void()>>> ops = {
      {"dense", [&] { benchmark::DoNotOptimize(batch == 1 ? at::addmv(b, w, x.select(0, 0)) : at::linear(x, w, b)); }}};
  for (const auto path : pr::vector_paths()) {
    ops.emplace_back(pr::path_name(path), [&, path] {
      pr::csr_linear(csr, x.data_ptr<float>(), batch, false, y.data_ptr<float>(), path);
      benchmark::DoNotOptimize(y.data_ptr<float>());
    });
  }
  std::vector<std::vector<double>> us(ops.size());
  for (auto _ : state) {
    for (size_t i = 0; i < ops.size(); ++i) {
      us[i].push_back(runtime::time_call(ops[i].second) * 1e6);
    }
  }
  const double dense = median(us[0]);
  state.counters["dense_us"] = dense;
  for (size_t i = 1; i < ops.size(); ++i) {
    state.counters[ops[i].first + "_us"] = median(us[i]);
    state.counters[ops[i].first + "_speedup"] = dense / median(us[i]);
  }
}

BENCHMARK(BM_CsrLinear)
    ->ArgsProduct({{1, 64}, {500, 700, 900, 950, 999}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
