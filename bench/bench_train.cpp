// Training and loader throughput on Fashion-MNIST: samples/s at batch 128 through the real Trainer.
#include <ATen/CPUGeneratorImpl.h>
#include <benchmark/benchmark.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench_stats.h"
#include "bench_threads.h"
#include "compress/prune/l1_pruner.h"
#include "core/allocator.h"
#include "core/blas_kernels.h"
#include "core/log.h"
#include "core/threads.h"
#include "data/loader.h"
#include "data/source.h"
#include "models/registry.h"
#include "models/torchscript.h"
#include "recipe/dataset_spec.h"
#include "runtime/fused_sgd.h"
#include "runtime/relu_max_pool.h"
#include "train/trainer.h"

using namespace shrink;

// --smoke: ctest's quick run on a tiny slice (every benchmark file reads it).
bool g_smoke = false;

namespace {

// Fashion-MNIST's training split, loaded once; empty when the dataset is not installed.
const data::Dataset& fmnist_train() {
  static const data::Dataset train = [] {
    try {
      YAML::Node spec = YAML::Load("{dataset: fashion-mnist, val_split: 0, train_limit: 0, test_limit: 1}");
      return data::load_splits(recipe::parse_data(spec, 0, ".")).train;
    } catch (const std::exception&) {
      return data::Dataset{};
    }
  }();
  return train;
}

// Fashion-MNIST, or nullptr after marking the benchmark skipped.
const data::Dataset* require_fmnist(benchmark::State& state) {
  if (fmnist_train().size() > 0) return &fmnist_train();
  state.SkipWithError("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)");
  return nullptr;
}

template <class ArchOptions>
void train_epochs(benchmark::State& state, const ArchOptions& arch, int64_t samples) {
  const auto* data = require_fmnist(state);
  if (!data) return;
  const auto& all = *data;
  const int threads = core::configure_threads(bench::threads());
  const auto train = all.head(g_smoke ? 2 * state.range(0) : samples);
  torch::manual_seed(0);
  auto model = models::build_model(arch, {train.sample_shape(), 10});
  train::Trainer trainer(
      model, train::TrainerOptions()
                 .epochs(1)
                 .batch_size(state.range(0))
                 .optimizer(train::OptimizerOptions().name(train::OptimizerKind::kSgd).lr(0.01).momentum(0.9))
                 .progress(false));
  for (auto _ : state) {
    const auto r = trainer.fit(train);
    benchmark::DoNotOptimize(r.global_step);
  }
  state.SetItemsProcessed(state.iterations() * train.size());
  state.counters["threads"] = threads;
}

void BM_TrainEpochMLP(benchmark::State& state) { train_epochs(state, models::MlpOptions().hidden({300, 100}), 25600); }
void BM_TrainEpochConvNet(benchmark::State& state) {
  train_epochs(state, models::ConvNetOptions().channels({32, 64}).fc({256}).dropout(0.25), 2560);
}

// The pruner's per-step cost: re-imposing the masks (w *= mask) on LeNet-300-100 after an update.
// Compare with BM_TrainEpochMLP's time per step (epoch time / 200 steps at batch 128).
void BM_PruneApplyMasksMLP(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::manual_seed(0);
  auto model = models::build_model(models::MlpOptions().hidden({300, 100}), {{1, 28, 28}, 10});
  compress::prune::L1Pruner pruner(
      model.ptr(), compress::prune::PruneOptions().sparsity(0.9).scope(shrink::compress::prune::PruneScope::kGlobal));
  pruner.prune_to_fraction_of_target(1.0);
  for (auto _ : state) pruner.apply_masks();
  state.SetItemsProcessed(state.iterations());
}

// A full training step with the pruner attached, for the overhead as a fraction of a step.
void BM_TrainEpochPrunedMLP(benchmark::State& state) {
  const auto* data = require_fmnist(state);
  if (!data) return;
  const auto& all = *data;
  core::configure_threads(bench::threads());
  const auto train = all.head(g_smoke ? 2 * state.range(0) : 25600);
  torch::manual_seed(0);
  auto model = models::build_model(models::MlpOptions().hidden({300, 100}), {train.sample_shape(), 10});
  auto pruner = std::make_shared<compress::prune::L1Pruner>(model.ptr(), compress::prune::PruneOptions().sparsity(0.9));
  pruner->prune_to_fraction_of_target(1.0);
  train::Trainer trainer(model, train::TrainerOptions().epochs(1).batch_size(state.range(0)).progress(false));
  trainer.add_callback(pruner);
  for (auto _ : state) benchmark::DoNotOptimize(trainer.fit(train).global_step);
  state.SetItemsProcessed(state.iterations() * train.size());
}

void BM_LoaderBatch(benchmark::State& state) {
  const auto* data = require_fmnist(state);
  if (!data) return;
  const auto& train = *data;
  core::configure_threads(bench::threads());
  data::BatchLoader loader(train, data::LoaderOptions().batch_size(state.range(0)).seed(1));
  loader.start_epoch(0);
  int64_t i = 0;
  for (auto _ : state) {
    auto b = loader.batch(i);
    benchmark::DoNotOptimize(b.inputs.data_ptr());
    if (++i == loader.batches_per_epoch()) i = 0;
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// One SGD step (forward, loss, backward, update) of each zoo model at batch 128 on random
// Fashion-MNIST-shaped data, so it runs without the dataset: 0 = mlp (LeNet-300-100),
// 1 = convnet, 2 = resnet, 3 = lenet5 (the recipes' sizes where a recipe uses them).
void BM_TrainStepZoo(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::manual_seed(0);
  const models::ModelInput input{{1, 28, 28}, 10};
  const auto arch = state.range(0);
  auto model = arch == 0   ? models::build_model(models::MlpOptions().hidden({300, 100}), input)
               : arch == 1 ? models::build_model(models::ConvNetOptions().channels({32, 64}).fc({128}), input)
               : arch == 2 ? models::build_model(models::ResNetOptions().widths({16, 32, 64}).blocks(2), input)
                           : models::build_model(models::LeNet5Options(), input);
  state.SetLabel(arch == 0 ? "mlp" : arch == 1 ? "convnet" : arch == 2 ? "resnet" : "lenet5");
  const int64_t batch = 128;
  const auto x = torch::randn({batch, 1, 28, 28});
  const auto y = torch::randint(0, 10, {batch});
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  model->train();
  for (auto _ : state) {
    opt.zero_grad();
    const auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

// ReLU + 2x2 max pooling, forward and backward, on a conv block's activation [batch, C, 28, 28]:
// the fused kernel (runtime/relu_max_pool.h) against at::relu then at::max_pool2d, alternated call
// by call. Counters: median ms of each and the speedup. Args: batch, channels, kernel (0 reference,
// 1 AVX2, 2 AVX-512), dtype (0 float, 1 bfloat16: what bf16 autocast pools; AVX2 runs the reference
// for it).
void BM_ReluMaxPool(benchmark::State& state) {
  const auto kernel = static_cast<runtime::VectorPath>(state.range(2));
  if (!runtime::vector_path_available(kernel)) {
    state.SkipWithError(("this CPU has no " + runtime::path_name(kernel) + " kernel").c_str());
    return;
  }
  const auto dtype = state.range(3) == 1 ? torch::kBFloat16 : torch::kFloat;
  state.SetLabel(runtime::path_name(kernel) + (dtype == torch::kBFloat16 ? ", bf16" : ", float"));
  core::configure_threads(bench::threads());
  torch::manual_seed(0);
  const auto x = torch::randn({state.range(0), state.range(1), 28, 28}).to(dtype).requires_grad_(true);
  const auto g = torch::randn({state.range(0), state.range(1), 14, 14}).to(dtype);
  const auto pass = [&](bool fused) {
    auto y = fused ? runtime::relu_max_pool2x2(x, kernel) : torch::max_pool2d(torch::relu(x), 2);
    y.backward(g);
    x.mutable_grad().reset();
  };
  bench::time_alternately(
      state, "fused", [&] { pass(true); }, "unfused", [&] { pass(false); }, "ms");
}

// One SGD step (momentum 0.9) over LeNet-300-100's parameters with gradients set: shrink's FusedSGD
// against torch::optim::SGD, alternated step by step. Counters: median µs of each and the speedup.
void BM_SgdStep(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::manual_seed(0);
  const auto params = [] {
    std::vector<torch::Tensor> ps;
    for (const auto& shape : std::vector<std::vector<int64_t>>{{300, 784}, {300}, {100, 300}, {100}, {10, 100}, {10}}) {
      auto p = torch::randn(shape).requires_grad_(true);
      p.mutable_grad() = torch::randn(shape);
      ps.push_back(p);
    }
    return ps;
  };
  const auto options = torch::optim::SGDOptions(0.01).momentum(0.9);
  runtime::FusedSGD fused(params(), options);
  torch::optim::SGD plain(params(), options);
  bench::time_alternately(
      state, "fused", [&] { fused.step(); }, "libtorch", [&] { plain.step(); }, "us");
}

// What the Trainer adds to a training loop: one epoch (40 steps at batch 128, random data) of
// LeNet-300-100 through train::Trainer against a bare LibTorch loop of the same work (shuffle,
// gather, forward, cross-entropy, backward, FusedSGD), alternated epoch by epoch. Counters: median
// ms of each and `speedup`, bare over Trainer: below 1 by the Trainer's own share of the step
// (schedule, modifiers' hooks, loss and accuracy bookkeeping).
void BM_TrainerOverhead(benchmark::State& state) {
  core::configure_threads(bench::threads());
  const int64_t batch = 128, samples = (g_smoke ? 2 : 40) * batch;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const data::Dataset train{at::normal(0.0, 1.0, {samples, 1, 28, 28}, gen), at::randint(0, 10, {samples}, gen), {}};
  torch::manual_seed(0);
  auto model = models::build_model(models::MlpOptions().hidden({300, 100}), {{1, 28, 28}, 10});
  train::Trainer trainer(model, train::TrainerOptions().epochs(1).batch_size(batch).progress(false).optimizer(
                                    train::OptimizerOptions().name(train::OptimizerKind::kSgd).lr(0.01).momentum(0.9)));
  torch::manual_seed(0);
  torch::nn::Sequential bare(torch::nn::Flatten(), torch::nn::Linear(784, 300), torch::nn::ReLU(),
                             torch::nn::Linear(300, 100), torch::nn::ReLU(), torch::nn::Linear(100, 10));
  runtime::FusedSGD opt(bare->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto bare_epoch = [&] {
    auto g = at::make_generator<at::CPUGeneratorImpl>(3);
    const auto order = at::randperm(samples, g, at::kLong);
    for (int64_t i = 0; i < samples; i += batch) {
      const auto idx = order.narrow(0, i, batch);
      for (auto& p : bare->parameters()) p.mutable_grad().reset();
      torch::nn::functional::cross_entropy(bare->forward(train.inputs.index_select(0, idx)),
                                           train.targets.index_select(0, idx))
          .backward();
      opt.step();
    }
  };
  bench::time_alternately(
      state, "trainer", [&] { trainer.fit(train); }, "bare", bare_epoch, "ms");
}

// One training epoch through shrink's Trainer of the same convnet (two conv+ReLU+pool blocks, a
// hidden Linear) as a zoo model and as a TorchScript module with the same weights: what the
// TorchScript interpreter and its autograd graph cost against the zoo's C++ modules.
void BM_TrainTorchScriptVsZoo(benchmark::State& state) {
  core::configure_threads(bench::threads());
  const int64_t batch = state.range(0), samples = (g_smoke ? 2 : 20) * batch;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const data::Dataset train{at::normal(0.0, 1.0, {samples, 1, 28, 28}, gen), at::randint(0, 10, {samples}, gen), {}};
  torch::manual_seed(0);
  auto zoo =
      models::build_model(models::ConvNetOptions().channels({16, 32}).fc({64}).batch_norm(false), {{1, 28, 28}, 10});
  torch::jit::Module net("ConvNet");
  const std::vector<std::string> names = {"c1w", "c1b", "c2w", "c2b", "f1w", "f1b", "f2w", "f2b"};
  const auto params = zoo->parameters();
  for (size_t i = 0; i < names.size(); ++i)
    net.register_parameter(names[i], params[i].detach().clone().requires_grad_(), false);
  net.define(R"(
def forward(self, x):
    x = torch.max_pool2d(torch.relu(torch.conv2d(x, self.c1w, self.c1b, [1, 1], [1, 1])), [2, 2])
    x = torch.max_pool2d(torch.relu(torch.conv2d(x, self.c2w, self.c2b, [1, 1], [1, 1])), [2, 2])
    x = torch.relu(torch.linear(torch.flatten(x, 1), self.f1w, self.f1b))
    return torch.linear(x, self.f2w, self.f2b)
)");
  auto scripted = models::to_model(models::TorchScriptModel(std::move(net)));
  const auto options = [&] {
    return train::TrainerOptions().epochs(1).batch_size(batch).progress(false).optimizer(
        train::OptimizerOptions().name(train::OptimizerKind::kSgd).lr(0.01).momentum(0.9));
  };
  train::Trainer zoo_trainer(zoo, options());
  train::Trainer ts_trainer(scripted.module, scripted.forward, options());
  bench::time_alternately(
      state, "torchscript", [&] { ts_trainer.fit(train); }, "zoo", [&] { zoo_trainer.fit(train); }, "ms");
}

BENCHMARK(BM_TrainEpochMLP)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainTorchScriptVsZoo)->Arg(32)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainerOverhead)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainEpochConvNet)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PruneApplyMasksMLP)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_TrainEpochPrunedMLP)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LoaderBatch)->Arg(128)->Arg(1024)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_TrainStepZoo)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ReluMaxPool)
    ->ArgsProduct({{128}, {32, 64}, {0, 1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_SgdStep)->Unit(benchmark::kMicrosecond)->UseRealTime();

// `--threads=N`'s N: what `shrink bench --threads` takes (0 = all cores); anything else stops the run.
int parse_threads(const char* text) {
  char* end = nullptr;
  const long n = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || n < 0 || n > core::kMaxThreads) {
    std::fprintf(stderr, "shrink_bench: --threads takes a count from 0 (all cores) to %d, got '%s'\n",
                 core::kMaxThreads, text);
    std::exit(2);
  }
  return static_cast<int>(n);
}

}  // namespace

int main(int argc, char** argv) {
  core::restart_on_better_blas_kernels(argv);
  std::vector<char*> args;
  bool tune_malloc = true;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0) {
      g_smoke = true;
    } else if (std::strcmp(argv[i], "--default-malloc") == 0) {
      tune_malloc = false;  // glibc's own settings, to measure what the shrink executable's tuning buys
    } else if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      bench::threads() = parse_threads(argv[i] + 10);
    } else {
      args.push_back(argv[i]);
    }
  }
  if (tune_malloc) core::keep_freed_memory_for_reuse();
  int n = static_cast<int>(args.size());
  core::set_log_level(core::LogLevel::kWarn);
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
