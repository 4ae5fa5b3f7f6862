// Pruned Linear layers: shrink's CSR kernel (each path) against the best dense kernel for the
// same 300×784 layer (addmv for one sample, at::linear for a batch), across sparsities.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "compress/prune/csr_linear.h"
#include "core/threads.h"

using namespace shrink;
namespace pr = shrink::compress::prune;

namespace {

torch::Tensor pruned_weight(double sparsity) {
  torch::manual_seed(0);
  return torch::randn({300, 784}) * 0.05 * (torch::rand({300, 784}) >= sparsity);
}

// Args: batch, sparsity in per mille.
void BM_DenseLinear(benchmark::State& state) {
  core::configure_threads(0);
  torch::NoGradGuard no_grad;
  const auto w = pruned_weight(state.range(1) / 1000.0), b = torch::randn({300});
  const auto x = torch::randn({state.range(0), 784});
  for (auto _ : state) {
    benchmark::DoNotOptimize(state.range(0) == 1 ? at::addmv(b, w, x.select(0, 0)) : at::linear(x, w, b));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// Args: batch, sparsity in per mille, path (0 reference, 1 AVX2, 2 AVX-512).
void BM_CsrLinear(benchmark::State& state) {
  core::configure_threads(0);
  const auto path = static_cast<pr::CsrPath>(state.range(2));
  if (!pr::csr_has_path(path)) {
    state.SkipWithError(("this CPU has no " + pr::path_name(path) + " path").c_str());
    return;
  }
  state.SetLabel(pr::path_name(path));
  const auto w = pr::csr_from_dense(pruned_weight(state.range(1) / 1000.0), torch::randn({300}));
  const auto x = torch::randn({state.range(0), 784});
  auto y = torch::empty({state.range(0), 300});
  for (auto _ : state) {
    pr::csr_linear(w, x.data_ptr<float>(), state.range(0), false, y.data_ptr<float>(), path);
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

BENCHMARK(BM_DenseLinear)->ArgsProduct({{1, 64}, {900}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_CsrLinear)
    ->ArgsProduct({{1, 64}, {500, 700, 900, 950, 999}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
