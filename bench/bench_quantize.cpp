// fp32 against int8 on this machine, interleaved in one run so the ratios are fair: Linear
// (300×784) and the convnet's two Conv2d shapes at batch 1 and 64 on each int8 engine and on
// shrink's own int8 kernels, and the whole convnet and LeNet-300-100 against their fastest fp32
// paths (oneDNN-prepacked convolutions, `addmv` for batch-1 Linear); shrink's two static int8
// Linear kernels against each other; the int8 residual add. Also the cost of observers and fake
// quantization per call.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "bench_stats.h"
#include "bench_threads.h"
#include "compress/quantize/fake_quantize.h"
#include "compress/quantize/int8_kernel_choice.h"
#include "compress/quantize/observer.h"
#include "compress/quantize/quantized_conv2d.h"
#include "compress/quantize/quantized_linear.h"
#include "compress/quantize/quantizer.h"
#include "core/format.h"
#include "core/threads.h"
#include "models/registry.h"
#include "models/residual_add.h"
#include "runtime/int8_conv2d.h"
#include "runtime/int8_flatten.h"
#include "runtime/int8_linear.h"
#include "runtime/int8_max_pool.h"
#include "runtime/packed_linear.h"
#include "runtime/quantize_row.h"

using namespace shrink;
namespace qz = shrink::compress::quantize;

namespace {

qz::BackendChoice engine_of(int64_t e) { return e == 0 ? qz::BackendChoice::kOneDnn : qz::BackendChoice::kQnnpack; }
const std::string& engine_name(int64_t e) { return core::name_of(engine_of(e)); }

// Skips when this build lacks the engine; otherwise makes it current.
bool use_engine(benchmark::State& state, int64_t e) {
  try {
    qz::use_backend(qz::resolve_backend(engine_of(e)));
    state.SetLabel(engine_name(e));
    return true;
  } catch (const std::exception& ex) {
    state.SkipWithError(ex.what());
    return false;
  }
}

qz::QParams observed(const torch::Tensor& t, qz::ObserverOptions o, int64_t channels = 0) {
  auto obs = qz::make_observer(o, channels);
  obs->forward(t);
  return obs->qparams();
}

// Min-max activations in the range a recipe's quantizer gives them for engine `e`: 7 bits where its
// int8 sums may saturate (oneDNN without VNNI; backend.h), where shrink's AVX2 tiles sum in 16 bits.
qz::ObserverOptions act(int64_t e) {
  return qz::ObserverOptions()
      .kind(shrink::compress::quantize::ObserverKind::kMinMax)
      .dtype(qz::QDtype::kQUInt8)
      .reduce_range(qz::int8_sums_may_saturate(qz::resolve_backend(engine_of(e))));
}
qz::ObserverOptions wgt(bool per_channel) {
  return qz::ObserverOptions()
      .kind(shrink::compress::quantize::ObserverKind::kMinMax)
      .dtype(qz::QDtype::kQInt8)
      .symmetric(true)
      .per_channel(per_channel);
}

// Arg 0: batch (for a bert: sentences × tokens); arg 1: shape (0 LeNet-300-100's first layer,
// 300×784; 1 the convnet's first fully connected layer, 256×3136; 2 and 3 MiniLM's feed-forward
// layers, 1536×384 and 384×1536).
torch::Tensor linear_weight(int64_t shape) {
  torch::manual_seed(0);
  switch (shape) {
    case 0:
      return torch::randn({300, 784}) * 0.05;
    case 1:
      return torch::randn({256, 3136}) * 0.02;
    case 2:
      return torch::randn({1536, 384}) * 0.05;
    default:
      return torch::randn({384, 1536}) * 0.02;
  }
}

void BM_LinearFp32(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  const auto w = linear_weight(state.range(1)), b = torch::randn({w.size(0)}),
             x = torch::randn({state.range(0), w.size(1)});
  for (auto _ : state) benchmark::DoNotOptimize(at::linear(x, w, b));
}

// The same on shrink's packed kernel (inference plans' dense Linear); arg 2: path (0 AVX-512,
// 1 AVX2).
void BM_LinearFp32Packed(benchmark::State& state) {
  core::configure_threads(bench::threads());
  const auto path = state.range(2) == 0 ? runtime::VectorPath::kAvx512 : runtime::VectorPath::kAvx2;
  if (!runtime::vector_path_available(path)) {
    state.SkipWithError(core::cat("this CPU has no ", runtime::path_name(path), " path").c_str());
    return;
  }
  state.SetLabel(runtime::path_name(path));
  const auto w = linear_weight(state.range(1));
  const auto packed = runtime::pack_linear(w, torch::randn({w.size(0)}));
  const auto x = torch::randn({state.range(0), w.size(1)});
  for (auto _ : state) benchmark::DoNotOptimize(runtime::packed_linear(packed, x, false, path));
}

void BM_LinearFp32Addmv(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto w = torch::randn({300, 784}) * 0.05, b = torch::randn({300}), x = torch::randn({784});
  for (auto _ : state) benchmark::DoNotOptimize(at::addmv(b, w, x));
}

// A benchmark's kernel argument: 0 LibTorch's kernels alone, 1 auto, 2 shrink's alone.
runtime::Int8Kernels kernels_arg(int64_t arg) {
  return arg == 0   ? runtime::Int8Kernels::kLibTorch
         : arg == 1 ? runtime::Int8Kernels::kAuto
                    : runtime::Int8Kernels::kShrink;
}

// Arg 0: engine (0 onednn, 1 qnnpack); arg 1: batch; arg 2: kernels (kernels_arg).
void BM_LinearInt8(benchmark::State& state) {
  core::configure_threads(bench::threads());
  if (!use_engine(state, state.range(0))) return;
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto w = torch::randn({300, 784}) * 0.05, b = torch::randn({300}), x = torch::randn({state.range(1), 784});
  const bool per_channel = state.range(0) == 0;
  qz::QuantizedLinear layer(784, 300, per_channel, qz::Activations::kStatic, true);
  layer->set_backend(qz::resolve_backend(engine_of(state.range(0))));
  layer->set_kernels(kernels_arg(state.range(2)));
  layer->set_weight(w, b, observed(w, wgt(per_channel), 300));
  layer->set_input(observed(x, act(state.range(0))));
  layer->set_output(observed(torch::relu(at::linear(x, w, b)), act(state.range(0))));
  const auto qx = torch::quantize_per_tensor(x, layer->input_qparams().scale.item<double>(),
                                             layer->input_qparams().zero_point.item<int64_t>(), torch::kQUInt8);
  state.SetLabel(core::name_of(kernels_arg(state.range(2))));
  for (auto _ : state) benchmark::DoNotOptimize(layer->forward(qx));
}

// A dynamic int8 Linear (float in and out, the input quantized per call): arg 0 batch, arg 1
// kernels (kernels_arg).
void BM_LinearInt8Dynamic(benchmark::State& state) {
  core::configure_threads(bench::threads());
  if (!use_engine(state, 0)) return;
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto w = torch::randn({300, 784}) * 0.05, b = torch::randn({300}), x = torch::randn({state.range(0), 784});
  qz::QuantizedLinear layer(784, 300, true, qz::Activations::kDynamic, false);
  layer->set_backend(qz::resolve_backend(engine_of(0)));
  layer->set_kernels(kernels_arg(state.range(1)));
  layer->set_weight(w, b, observed(w, wgt(true), 300));
  state.SetLabel(core::name_of(kernels_arg(state.range(1))));
  for (auto _ : state) benchmark::DoNotOptimize(layer->forward(x));
}

// A ResNet block's int8 residual add (relu(a + b), 64 channels at 14 × 14, channels-last as the
// convolutions leave it) per kernel choice. Args: batch, kernels (kernels_arg).
void BM_Int8ResidualAdd(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto quantized = [&](double scale, int64_t zero_point) {
    const auto x = torch::randn({state.range(0), 64, 14, 14}).contiguous(at::MemoryFormat::ChannelsLast);
    return at::quantize_per_tensor(x, scale, zero_point, at::kQUInt8);
  };
  const auto a = quantized(0.03, 120), b = quantized(0.05, 110);
  models::ResidualAdd add(true);
  add->to_int8();
  add->set_output(observed(torch::relu(a.dequantize() + b.dequantize()), act(0)));
  add->set_kernels(kernels_arg(state.range(1)));
  state.SetLabel(core::name_of(kernels_arg(state.range(1))));
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b));
}

void BM_Conv2dFp32(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto w = torch::randn({64, 32, 3, 3}) * 0.05, b = torch::randn({64}),
             x = torch::randn({state.range(0), 32, 14, 14});
  for (auto _ : state) benchmark::DoNotOptimize(at::conv2d(x, w, b, 1, 1));
}

// The convnet's convolutions (3×3, padding 1): shape 0 its second (32→64 at 14×14), 1 its first
// (1→32 at 28×28).
struct ConvShape {
  int64_t in, out, size;
};
ConvShape conv_shape(int64_t s) { return s == 0 ? ConvShape{32, 64, 14} : ConvShape{1, 32, 28}; }

// Weights reordered for oneDNN once; input in oneDNN's layout: the fastest fp32 conv here.
// Args: batch, shape.
void BM_Conv2dFp32Prepacked(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto c = conv_shape(state.range(1));
  const auto w = torch::randn({c.out, c.in, 3, 3}) * 0.05, b = torch::randn({c.out}),
             x = torch::randn({state.range(0), c.in, c.size, c.size});
  const auto wp = at::mkldnn_reorder_conv2d_weight(w.to_mkldnn(), {1, 1}, {1, 1}, {1, 1}, 1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(at::mkldnn_convolution(x.to_mkldnn(), wp, b, {1, 1}, {1, 1}, {1, 1}, 1).to_dense());
  }
}

// Args: engine, batch, shape, kernels (kernels_arg; shrink's: int8_conv2d.h).
void BM_Conv2dInt8(benchmark::State& state) {
  core::configure_threads(bench::threads());
  if (!use_engine(state, state.range(0))) return;
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto c = conv_shape(state.range(2));
  const auto w = torch::randn({c.out, c.in, 3, 3}) * 0.05, b = torch::randn({c.out}),
             x = torch::randn({state.range(1), c.in, c.size, c.size});
  const bool per_channel = state.range(0) == 0;
  qz::QuantizedConv2d layer(qz::Conv2dGeometry{c.in, c.out, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, per_channel, true);
  layer->set_backend(qz::resolve_backend(engine_of(state.range(0))));
  layer->set_kernels(kernels_arg(state.range(3)));
  layer->set_weight(w, b, observed(w, wgt(per_channel), c.out));
  layer->set_input(observed(x, act(state.range(0))));
  layer->set_output(observed(torch::relu(at::conv2d(x, w, b, 1, 1)), act(state.range(0))));
  const auto qx = torch::quantize_per_tensor(x, layer->input_qparams().scale.item<double>(),
                                             layer->input_qparams().zero_point.item<int64_t>(), torch::kQUInt8);
  state.SetLabel(core::cat(core::name_of(kernels_arg(state.range(3))), ", shrink's path ",
                           runtime::int8_path_name(runtime::int8_conv2d_best_path())));
  for (auto _ : state) benchmark::DoNotOptimize(layer->forward(qx));
}

// The recipes' convnet (fmnist shapes): channels 32/64, fc 256, BN folded.
models::Model convnet() {
  torch::manual_seed(0);
  YAML::Node o = YAML::Load("{channels: [32, 64], kernel_size: 3, fc: [256], batch_norm: true, dropout: 0.0}");
  auto m = models::build_model("convnet", o, {{1, 28, 28}, 10});
  m.module->eval();
  return m;
}

// `model` on LibTorch's default fp32 path; arg 0: batch.
void run_fp32(benchmark::State& state, models::Model m) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({state.range(0), 1, 28, 28});
  for (auto _ : state) benchmark::DoNotOptimize(m.forward(x));
}

// `model` quantized post-training (static, calibrated on random batches); args: engine, batch,
// kernels (kernels_arg).
void run_int8(benchmark::State& state, models::Model m) {
  core::configure_threads(bench::threads());
  if (!use_engine(state, state.range(0))) return;
  torch::NoGradGuard no_grad;
  qz::PostTrainingQuantizer q(m, qz::QuantizeOptions().backend(engine_of(state.range(0))));
  q.prepare();
  for (int i = 0; i < 4; ++i) m.forward(torch::randn({64, 1, 28, 28}));
  q.convert(m);
  qz::set_int8_kernels(*m.module, kernels_arg(state.range(2)));
  state.SetLabel(core::cat(engine_name(state.range(0)), ", kernels ", core::name_of(kernels_arg(state.range(2))),
                           ", threads ", at::get_num_threads()));
  const auto x = torch::randn({state.range(1), 1, 28, 28});
  for (auto _ : state) benchmark::DoNotOptimize(m.forward(x));
}

void BM_ConvNetFp32(benchmark::State& state) { run_fp32(state, convnet()); }

// The same network on oneDNN-prepacked convolutions (BN folded into them), dense for the FC part.
void BM_ConvNetFp32Prepacked(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  auto m = convnet();
  struct Conv {
    torch::Tensor w, b;
  };
  std::vector<Conv> convs;
  for (const auto& g : qz::find_groups(*m.module)) {
    if (g.kind != qz::GroupKind::kConv2d) continue;
    auto [w, b] = qz::fold_batch_norm(*m.module, g);
    convs.push_back({at::mkldnn_reorder_conv2d_weight(w.to_mkldnn(), {1, 1}, {1, 1}, {1, 1}, 1), b});
  }
  const auto sd = m.module->named_parameters();
  const auto w1 = sd["classifier.0.weight"], b1 = sd["classifier.0.bias"], w2 = sd["classifier.2.weight"],
             b2 = sd["classifier.2.bias"];
  const auto x = torch::randn({state.range(0), 1, 28, 28});
  for (auto _ : state) {
    auto y = x.to_mkldnn();
    for (const auto& c : convs) {
      y = at::max_pool2d(at::relu(at::mkldnn_convolution(y, c.w, c.b, {1, 1}, {1, 1}, {1, 1}, 1)), {2, 2}, {2, 2});
    }
    auto h = at::relu(at::linear(y.to_dense().flatten(1), w1, b1));
    benchmark::DoNotOptimize(at::linear(h, w2, b2));
  }
}

void BM_ConvNetInt8(benchmark::State& state) { run_int8(state, convnet()); }

models::Model lenet300() {
  torch::manual_seed(0);
  auto m = models::build_model("mlp", YAML::Load("{hidden: [300, 100], batch_norm: false, dropout: 0.0}"),
                               {{1, 28, 28}, 10});
  m.module->eval();
  return m;
}

// LeNet-300-100 at batch 1 as a chain of addmv: the fastest fp32 path for one sample.
void BM_MlpFp32Addmv(benchmark::State& state) {
  core::configure_threads(bench::threads());
  torch::NoGradGuard no_grad;
  auto m = lenet300();
  const auto p = m.module->named_parameters();
  // Looked up once: the timed loop holds nothing but the three layers.
  const auto w0 = p["classifier.0.weight"], b0 = p["classifier.0.bias"], w1 = p["classifier.2.weight"],
             b1 = p["classifier.2.bias"], w2 = p["classifier.4.weight"], b2 = p["classifier.4.bias"];
  const auto x = torch::randn({784});
  for (auto _ : state) {
    auto h = at::relu(at::addmv(b0, w0, x));
    h = at::relu(at::addmv(b1, w1, h));
    benchmark::DoNotOptimize(at::addmv(b2, w2, h));
  }
}

void BM_MlpFp32(benchmark::State& state) { run_fp32(state, lenet300()); }

void BM_MlpInt8(benchmark::State& state) { run_int8(state, lenet300()); }

// Arg: 0 minmax, 1 moving_average, 2 histogram — on a [128, 256] activation.
void BM_Observer(benchmark::State& state) {
  core::configure_threads(bench::threads());
  const qz::ObserverKind kinds[] = {qz::ObserverKind::kMinMax, qz::ObserverKind::kMovingAverage,
                                    qz::ObserverKind::kHistogram};
  auto obs = qz::make_observer(act(0).kind(kinds[state.range(0)]));
  torch::manual_seed(0);
  const auto x = torch::randn({128, 256});
  state.SetLabel(core::name_of(kinds[state.range(0)]));
  for (auto _ : state) benchmark::DoNotOptimize(obs->forward(x));
}

void BM_FakeQuantize(benchmark::State& state) {
  core::configure_threads(bench::threads());
  qz::FakeQuantize fq(act(0).kind(shrink::compress::quantize::ObserverKind::kMovingAverage));
  torch::manual_seed(0);
  const auto x = torch::randn({128, 256});
  fq->forward(x);
  fq->enable_observer(state.range(0) == 1);
  state.SetLabel(state.range(0) == 1 ? "observing" : "frozen");
  for (auto _ : state) benchmark::DoNotOptimize(fq->forward(x));
}

// AVX2's 7-bit tile on paired quads against the same packed weights read one quad at a time,
// alternated call by call, one thread: args layer (0 the convnet's Linear 3136 → 256, 1 its
// Conv2d 32 → 64 on 14 × 14, 2 the same with its 2x2 max pooling in one pass) and batch. Weights
// Gaussian, σ 30 levels, as training leaves them (every quad pairs); 7-bit inputs. Counters: each
// median in µs and the speedup.
void BM_Int8PairedQuads(benchmark::State& state) {
  core::configure_threads(1);
  if (!runtime::int8_path_available(runtime::Int8Path::kAvx2)) {
    state.SkipWithError("no AVX2 on this CPU: the 7-bit tile does not run");
    return;
  }
  const int64_t layer = state.range(0), n = state.range(1);
  torch::manual_seed(0);
  const bool linear = layer == 0;
  const runtime::Conv2dGeometry g{linear ? 3136 : 32,
                                  linear ? 256 : 64,
                                  1,
                                  {linear ? 1 : 3, linear ? 1 : 3},
                                  {1, 1},
                                  {linear ? 0 : 1, linear ? 0 : 1},
                                  {1, 1}};
  const auto w8 = (torch::randn({g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]}) * 30)
                      .round()
                      .clamp(-127, 127)
                      .to(torch::kChar);
  const std::vector<float> scales(static_cast<size_t>(g.out_channels), 0.002f),
      bias(static_cast<size_t>(g.out_channels), 0.1f);
  const auto paired = runtime::pack_int8_conv2d(g, w8.data_ptr<int8_t>(), scales, bias);
  // The same order read as single quads: a pair's two quads are adjacent in it.
  auto single = paired;
  for (size_t b = 0; b < single.narrow_pairs.size(); ++b) {
    single.narrow_singles[b] += 2 * single.narrow_pairs[b];
    single.narrow_pairs[b] = 0;
  }
  const int64_t side = linear ? 1 : 14;
  const auto x = torch::randint(0, 128, {n * side * side * g.in_channels}, torch::kByte);
  std::vector<uint8_t> out(static_cast<size_t>(n * side * side * g.out_channels));
  runtime::Int8GemvParams p;
  p.in_scale = 0.02f;
  p.in_zero_point = 3;
  p.out_scale = 0.5f;
  p.relu = true;
  const auto run = [&](const runtime::Int8ConvWeights& w) {
    if (layer == 2) {
      runtime::int8_conv2d_max_pool2x2(w, x.data_ptr<uint8_t>(), n, side, side, p, out.data(),
                                       runtime::Int8Path::kAvx2);
    } else if (linear) {
      runtime::int8_linear(w, x.data_ptr<uint8_t>(), n, p, out.data(), runtime::Int8Path::kAvx2);
    } else {
      runtime::int8_conv2d(w, x.data_ptr<uint8_t>(), n, side, side, p, out.data(), runtime::Int8Path::kAvx2);
    }
  };
  state.SetLabel(layer == 0 ? "linear 3136 -> 256" : layer == 1 ? "conv 32 -> 64, 14x14" : "conv 32 -> 64, pooled");
  bench::time_alternately(
      state, "paired", [&] { run(paired); }, "single", [&] { run(single); }, "us");
}

// What runs between the convnet's int8 layers, shrink's against LibTorch's, alternated call by call
// on the convnet's shapes: args batch and step (0 quantizing the float input, 1 and 2 pooling the
// first and second convolution's output, 3 flattening the second pooling's output). Counters: each
// median in µs and the speedup.
void BM_Int8BetweenLayers(benchmark::State& state) {
  core::configure_threads(bench::threads());
  const int64_t n = state.range(0), step = state.range(1);
  torch::manual_seed(0);
  const auto bytes = [&](int64_t c, int64_t hw) {
    return at::_make_per_tensor_quantized_tensor(torch::randint(0, 128, {n, c, hw, hw}, torch::kByte), 0.05, 3)
        .contiguous(at::MemoryFormat::ChannelsLast);
  };
  if (step == 0) {
    state.SetLabel("quantize the input");
    const auto x = torch::randn({n, 1, 28, 28});
    // The output allocated each call on both sides, as a layer allocates it.
    bench::time_alternately(
        state, "shrink",
        [&] {
          auto out = at::_empty_affine_quantized(x.sizes(), at::TensorOptions().dtype(at::kQUInt8), 0.02, 40);
          runtime::quantize_row(x.data_ptr<float>(), x.numel(), 0.02f, 40, reinterpret_cast<uint8_t*>(out.data_ptr()));
          benchmark::DoNotOptimize(out);
        },
        "libtorch", [&] { benchmark::DoNotOptimize(at::quantize_per_tensor(x, 0.02, 40, at::kQUInt8)); }, "us");
  } else if (step <= 2) {
    state.SetLabel(step == 1 ? "max pool 32 x 28 x 28" : "max pool 64 x 14 x 14");
    const auto x = step == 1 ? bytes(32, 28) : bytes(64, 14);
    bench::time_alternately(
        state, "shrink", [&] { benchmark::DoNotOptimize(runtime::int8_max_pool2x2(x)); }, "libtorch",
        [&] {
          benchmark::DoNotOptimize(at::max_pool2d(x, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false));
        },
        "us");
  } else {
    state.SetLabel("flatten 64 x 7 x 7");
    const auto x = bytes(64, 7);
    bench::time_alternately(
        state, "shrink", [&] { benchmark::DoNotOptimize(runtime::int8_flatten(x)); }, "libtorch",
        [&] { benchmark::DoNotOptimize(x.flatten(1)); }, "us");
  }
}

BENCHMARK(BM_Int8BetweenLayers)->ArgsProduct({{1, 64}, {0, 1, 2, 3}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Int8PairedQuads)->ArgsProduct({{0, 1, 2}, {1, 64}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_LinearFp32)
    ->ArgsProduct({{1, 64}, {0, 1}})
    ->ArgsProduct({{128, 4096}, {2, 3}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_LinearFp32Packed)
    ->ArgsProduct({{1, 64}, {0, 1}, {0, 1}})
    ->ArgsProduct({{128, 4096}, {2, 3}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_LinearFp32Addmv)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_LinearInt8)
    ->ArgsProduct({{0}, {1, 64}, {0, 1, 2}})
    ->Args({1, 1, 0})
    ->Args({1, 64, 0})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_LinearInt8Dynamic)->ArgsProduct({{1, 64}, {0, 1, 2}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Int8ResidualAdd)->ArgsProduct({{1, 64}, {0, 1, 2}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Conv2dFp32)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Conv2dFp32Prepacked)->ArgsProduct({{1, 64}, {0, 1}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Conv2dInt8)
    ->ArgsProduct({{0}, {1, 64}, {0, 1}, {0, 1, 2}})
    ->Args({1, 1, 0, 0})
    ->Args({1, 64, 0, 0})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_ConvNetFp32)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ConvNetFp32Prepacked)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ConvNetInt8)
    ->ArgsProduct({{0}, {1, 64}, {0, 1, 2}})
    ->Args({1, 1, 1})
    ->Args({1, 64, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_MlpFp32Addmv)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MlpFp32)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MlpInt8)
    ->ArgsProduct({{0}, {1, 64}, {0, 1, 2}})
    ->Args({1, 1, 1})
    ->Args({1, 64, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_Observer)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_FakeQuantize)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
