// Distillation's added cost per step: the KD loss (forward and backward) at the batch sizes
// recipes use, next to a plain cross-entropy on the same logits.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "bench_threads.h"
#include "core/threads.h"
#include "distill/kd_loss.h"

using namespace shrink;

namespace {

// Arg: batch size; Arg 2: 0 = cross-entropy alone, 1 = kd_loss (T 4, alpha 0.7).
void BM_KdLoss(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::manual_seed(0);
  const int64_t batch = state.range(0);
  const auto teacher = torch::randn({batch, 10});
  const auto targets = torch::randint(0, 10, {batch});
  const auto student = torch::randn({batch, 10}, torch::requires_grad());
  const bool kd = state.range(1) == 1;
  state.SetLabel(kd ? "kd_loss" : "cross_entropy");
  for (auto _ : state) {
    const auto loss =
        kd ? distill::kd_loss(student, teacher, targets, distill::KdLossOptions().temperature(4).alpha(0.7))
           : torch::nn::functional::cross_entropy(student, targets);
    loss.backward();
    student.mutable_grad().reset();
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

BENCHMARK(BM_KdLoss)
    ->Args({128, 0})
    ->Args({128, 1})
    ->Args({1024, 0})
    ->Args({1024, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
