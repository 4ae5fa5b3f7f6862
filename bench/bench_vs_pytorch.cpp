// shrink against PyTorch from Python (/usr/bin/python3, bench/pytorch_worker.py) and against
// hand-written fastest paths, interleaved round by round in one process so that the ratios share
// the machine's noise: training samples/s and inference latency of the zoo models, and the planned
// inference path against a hand-chained oneDNN convnet and an addmv LeNet-300-100.
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "bench_stats.h"
#include "bench_threads.h"
#include "core/threads.h"
#include "models/inference_plan.h"
#include "models/zoo.h"
#include "runtime/timing.h"
#include "train/trainer.h"

using namespace shrink;
using nlohmann::json;

extern bool g_smoke;  // bench_train.cpp: --smoke, ctest's quick run

namespace {

// The Python worker, started on first use and kept for the whole run.
class PythonWorker {
 public:
  static PythonWorker& get() {
    static PythonWorker worker;
    return worker;
  }
  const std::string& error() const { return error_; }

  json ask(const json& request) {
    const std::string line = request.dump() + "\n";
    if (::write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      return {{"error", "worker pipe closed"}};
    return read_line();
  }

 private:
  PythonWorker() {
    // A worker that died is reported by the next read; writing to it must not kill the benchmark.
    std::signal(SIGPIPE, SIG_IGN);
    int in[2], out[2];
    if (::access("/usr/bin/python3", X_OK) != 0 || ::pipe(in) != 0 || ::pipe(out) != 0) {
      error_ = "/usr/bin/python3 is not installed";
      return;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      ::execl("/usr/bin/python3", "python3", SHRINK_BENCH_DIR "/pytorch_worker.py", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = ::fdopen(out[0], "r");
    pid_ = pid;
    const auto hello = read_line();
    if (!hello.contains("ready")) error_ = "PyTorch worker: " + hello.value("error", std::string("did not start"));
  }
  ~PythonWorker() {
    if (to_ >= 0) ::close(to_);
    if (from_) std::fclose(from_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  json read_line() {
    if (!from_) return {{"error", "no worker"}};
    char* buf = nullptr;
    size_t cap = 0;
    const ssize_t n = ::getline(&buf, &cap, from_);
    std::unique_ptr<char, decltype(&std::free)> hold(buf, &std::free);
    if (n <= 0) return {{"error", "worker exited"}};
    return json::parse(std::string(buf, static_cast<size_t>(n)), nullptr, false);
  }

  int to_ = -1;
  FILE* from_ = nullptr;
  pid_t pid_ = -1;
  std::string error_;
};

using bench::median;

struct Zoo {
  const char* name;
  json spec;  // the Python worker's model spec
  models::Classifier (*build)();
};

const Zoo& zoo(int64_t i) {
  static const std::vector<Zoo> all = {
      {"mlp",
       {{"arch", "mlp"}, {"hidden", {300, 100}}},
       [] {
         return models::build_model(models::MlpOptions().hidden({300, 100}), {{1, 28, 28}, 10});
       }},
      // The convnet: no BatchNorm, no dropout.
      {"convnet",
       {{"arch", "convnet"}, {"batch_norm", false}},
       [] {
         return models::build_model(models::ConvNetOptions().batch_norm(false), {{1, 28, 28}, 10});
       }},
      {"convnet_bn_dropout",
       {{"arch", "convnet"}, {"batch_norm", true}, {"dropout", 0.25}},
       [] {
         return models::build_model(models::ConvNetOptions().batch_norm(true).dropout(0.25), {{1, 28, 28}, 10});
       }},
      {"lenet5",
       {{"arch", "lenet5"}},
       [] {
         return models::build_model(models::LeNet5Options(), {{1, 28, 28}, 10});
       }},
      {"resnet20",
       {{"arch", "resnet"}},
       [] {
         return models::build_model(models::ResNetOptions(), {{1, 28, 28}, 10});
       }},
  };
  return all.at(static_cast<size_t>(i));
}

PythonWorker* require_python(benchmark::State& state) {
  auto& w = PythonWorker::get();
  if (!w.error().empty()) {
    state.SkipWithError(w.error().c_str());
    return nullptr;
  }
  return &w;
}

// One epoch of SGD (lr 0.01, momentum 0.9) at batch 128 over random Fashion-MNIST-shaped data a
// round, shrink's Trainer then PyTorch's loop. Counters: median samples/s of each and the ratio.
// Arg: zoo index.
void BM_VsPyTorchTrain(benchmark::State& state) {
  auto* py = require_python(state);
  if (!py) return;
  const auto& z = zoo(state.range(0));
  state.SetLabel(z.name);
  const int threads = core::configure_threads(bench::threads());
  const int64_t batch = 128;
  const int64_t samples = g_smoke ? 2 * batch : (z.name == std::string("mlp") ? 40 : 8) * batch;
  torch::manual_seed(0);
  auto model = z.build();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const data::Dataset train{at::normal(0.0, 1.0, {samples, 1, 28, 28}, gen), at::randint(0, 10, {samples}, gen), {}};
  train::Trainer trainer(model, train::TrainerOptions().epochs(1).batch_size(batch).progress(false).optimizer(
                                    train::OptimizerOptions().name(train::OptimizerKind::kSgd).lr(0.01).momentum(0.9)));
  const json request = {
      {"op", "train"}, {"model", z.spec}, {"samples", samples}, {"batch", batch}, {"threads", threads}};
  trainer.fit(train);  // warm-up round, both sides
  py->ask(request);
  std::vector<double> ours, theirs, ratio;
  for (auto _ : state) {
    const double s = runtime::time_call([&] { trainer.fit(train); });
    const auto r = py->ask(request);
    if (!r.contains("seconds")) {
      state.SkipWithError(r.value("error", std::string("bad worker reply")).c_str());
      return;
    }
    ours.push_back(samples / s);
    theirs.push_back(samples / r["seconds"].get<double>());
    ratio.push_back(ours.back() / theirs.back());
  }
  state.counters["shrink_samples_per_s"] = median(ours);
  state.counters["pytorch_samples_per_s"] = median(theirs);
  state.counters["ratio"] = median(ratio);
  state.counters["threads"] = threads;
}

// Inference latency at a batch size: shrink's planned path against PyTorch's eval forward under
// inference_mode, `calls` calls each a round. Counters: median ms of each and PyTorch's over shrink's.
// Args: zoo index, batch.
void BM_VsPyTorchInfer(benchmark::State& state) {
  auto* py = require_python(state);
  if (!py) return;
  const auto& z = zoo(state.range(0));
  const int64_t batch = state.range(1);
  const int threads = core::configure_threads(bench::threads());
  torch::manual_seed(0);
  const auto model = models::to_model(z.build());
  const auto plan = models::plan_inference(model, {1, 28, 28}, batch, c10::kCPU);
  state.SetLabel(std::string(z.name) + " " + plan.path);
  const int64_t calls = g_smoke ? 2 : 30;
  const auto x = torch::randn({batch, 1, 28, 28});
  const json request = {{"op", "infer"}, {"model", z.spec}, {"batch", batch}, {"calls", calls}, {"threads", threads}};
  torch::NoGradGuard no_grad;
  std::vector<double> ours, theirs;
  for (auto _ : state) {
    for (int64_t i = 0; i < calls; ++i) {
      ours.push_back(runtime::time_call([&] { plan.forward(x); }) * 1e3);
    }
    const auto r = py->ask(request);
    if (!r.contains("ms")) {
      state.SkipWithError(r.value("error", std::string("bad worker reply")).c_str());
      return;
    }
    for (const auto& v : r["ms"]) theirs.push_back(v.get<double>());
  }
  state.counters["shrink_ms"] = median(ours);
  state.counters["pytorch_ms"] = median(theirs);
  state.counters["speedup"] = median(theirs) / median(ours);
}

// The planned path against a hand-written chain of LibTorch's fastest kernels for the same weights,
// interleaved call by call: the convnet (no BatchNorm) as prepacked oneDNN convolutions, ReLU, max
// pooling, then at::linear or addmv; LeNet-300-100 as a chain of addmv (one sample) or at::linear.
// Counters: median ms of each and planned over hand-written (≤ 1.2 is the target; below 1 where
// the plan's own kernels beat LibTorch's). Args: 0 convnet / 1 mlp, batch.
void BM_PlanVsHandWritten(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const bool conv = state.range(0) == 0;
  const int64_t batch = state.range(1);
  auto c = conv ? zoo(1).build() : zoo(0).build();
  c->eval();
  const auto plan = models::plan_inference(models::to_model(c), {1, 28, 28}, batch, c10::kCPU);
  state.SetLabel(std::string(conv ? "convnet " : "mlp ") + plan.path);
  struct Conv {
    at::Tensor w, b;
  };
  std::vector<Conv> convs;
  std::vector<std::pair<at::Tensor, at::Tensor>> fcs;
  for (size_t i = 0; i < c->features->size(); ++i) {
    if (auto l = c->features->as<torch::nn::Conv2dImpl>(i)) {
      convs.push_back({at::mkldnn_reorder_conv2d_weight(l->weight.to_mkldnn(), {1, 1}, {1, 1}, {1, 1}, 1), l->bias});
    }
  }
  for (size_t i = 0; i < c->classifier->size(); ++i) {
    if (auto l = c->classifier->as<torch::nn::LinearImpl>(i)) fcs.emplace_back(l->weight, l->bias);
  }
  const auto hand = [&](const at::Tensor& x) {
    at::Tensor h;
    if (conv) {
      auto y = x.to_mkldnn();
      for (const auto& k : convs) {
        auto z = at::mkldnn_convolution(y, k.w, k.b, {1, 1}, {1, 1}, {1, 1}, 1);
        y = at::max_pool2d(at::relu_(z), {2, 2}, {2, 2});
      }
      h = y.to_dense().flatten(1);
    } else {
      h = x.flatten(1);
    }
    for (size_t i = 0; i < fcs.size(); ++i) {
      h = batch == 1 ? at::addmv(fcs[i].second, fcs[i].first, h.select(0, 0)).unsqueeze(0)
                     : at::linear(h, fcs[i].first, fcs[i].second);
      if (i + 1 < fcs.size()) h = at::relu_(h);
    }
    return h;
  };
  const auto x = torch::randn({batch, 1, 28, 28});
  std::vector<double> planned, written;
  for (auto _ : state) {
    for (int i = 0; i < (g_smoke ? 1 : 20); ++i) {
      planned.push_back(runtime::time_call([&] { plan.forward(x); }) * 1e3);
      written.push_back(runtime::time_call([&] { hand(x); }) * 1e3);
    }
  }
  state.counters["planned_ms"] = median(planned);
  state.counters["hand_written_ms"] = median(written);
  state.counters["ratio"] = median(planned) / median(written);
}

BENCHMARK(BM_VsPyTorchTrain)->DenseRange(0, 4)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_VsPyTorchInfer)
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1, 64}})
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_PlanVsHandWritten)
    ->Args({0, 1})
    ->Args({0, 64})
    ->Args({1, 1})
    ->Args({1, 64})
    ->Iterations(10)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
