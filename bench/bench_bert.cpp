// The BERT encoder's forward pass at all-MiniLM-L6-v2's size (6 layers, hidden 384, 12 heads;
// weights seeded, not pretrained: the time does not depend on them) for the batch sizes and
// sequence lengths sentence embedding is served at. bench/bert_pytorch.py times transformers'
// BertModel on the same shapes and threads, for the ratio.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "compress/quantize/int8_kernel_choice.h"
#include "compress/quantize/quantizer.h"
#include "core/error.h"
#include "core/threads.h"
#include "models/bert.h"
#include "models/inference_plan.h"

using namespace shrink;

namespace {

// Args: batch, sequence length, threads, layers (6: MiniLM-L6; 3: the every-other-layer student),
// plan (0: the module's forward, LibTorch's kernels; 1: models::plan_inference's path, each Linear
// on shrink's packed kernel where that was timed faster, as `shrink bench` and evaluation run it).
void BM_BertFp32(benchmark::State& state) {
  core::configure_threads(static_cast<int>(state.range(2)));
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  models::BertModel bert(models::BertOptions().layers(state.range(3)));
  bert->eval();
  const auto model = models::to_model(bert);
  auto forward = model.forward;
  if (state.range(4) == 1) {
    const auto plan = models::plan_inference(model, {state.range(1)}, state.range(0), c10::kCPU);
    forward = plan.forward;
    state.SetLabel(plan.path);
  }
  // Token ids of real text never hit the padding id here: every position counts.
  const auto ids = torch::randint(1, bert->options().vocab_size(), {state.range(0), state.range(1)}, torch::kLong);
  for (auto _ : state) benchmark::DoNotOptimize(forward(ids));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// The same with every Linear dynamic int8 (the library's PostTrainingQuantizer), as torch.ao's
// quantize_dynamic converts transformers' model in bench/bert_pytorch.py. Arg 4: whose int8
// kernels (0 LibTorch's, 1 auto).
void BM_BertInt8Dynamic(benchmark::State& state) {
  namespace qz = compress::quantize;
  core::configure_threads(static_cast<int>(state.range(2)));
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  models::BertModel bert(models::BertOptions().layers(state.range(3)));
  bert->eval();
  auto model = models::to_model(bert);
  qz::PostTrainingQuantizer quantizer(model, qz::QuantizeOptions().method(qz::QuantizeMethod::kDynamic));
  quantizer.prepare();
  quantizer.convert(model);
  const auto kernels = state.range(4) == 0 ? runtime::Int8Kernels::kLibTorch : runtime::Int8Kernels::kAuto;
  qz::set_int8_kernels(*model.module, kernels);
  state.SetLabel(core::cat(core::name_of(quantizer.backend()), ", kernels ", core::name_of(kernels)));
  const auto ids = torch::randint(1, bert->options().vocab_size(), {state.range(0), state.range(1)}, torch::kLong);
  for (auto _ : state) benchmark::DoNotOptimize(model.forward(ids));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(BM_BertInt8Dynamic)
    ->ArgNames({"batch", "len", "threads", "layers", "kernels"})
    ->ArgsProduct({{1, 32}, {32, 128}, {1}, {6, 3}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK(BM_BertFp32)
    ->ArgNames({"batch", "len", "threads", "layers", "plan"})
    ->ArgsProduct({{1, 32}, {32, 128}, {1}, {6, 3}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
