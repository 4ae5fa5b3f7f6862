// Whose kernels int8 layers run: shrink's alone (every batch size, every CPU), for when PyTorch's
// quantized kernels are gone, agree with LibTorch's; each choice refuses what it cannot run, naming why.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

#include "compress/quantize/backend.h"
#include "compress/quantize/int8_kernel_choice.h"
#include "compress/quantize/observer.h"
#include "compress/quantize/quantized_conv2d.h"
#include "compress/quantize/quantized_linear.h"
#include "compress/quantize/quantizer.h"
#include "core/error.h"
#include "data/dataset.h"
#include "helpers.h"
#include "models/registry.h"
#include "models/residual_add.h"
#include "runtime/int8_add.h"
#include "runtime/int8_conv2d.h"
#include "runtime/int8_gemv.h"
#include "runtime/int8_kernels.h"
#include "runtime/int8_linear.h"

using namespace shrink;
using namespace shrink::testing;
namespace q = shrink::compress::quantize;
using runtime::Int8Kernels;

namespace {

// LibTorch's kernels and shrink's may round a sum on either side of a level's midpoint.
constexpr int64_t kMaxKernelLevelDiff = 1;
// Dynamic layers: the same input quantization and exact int32 sums; only the float rescale rounds.
constexpr double kDynamicRelativeTolerance = 1e-5;

q::ObserverOptions minmax(q::QDtype dtype, bool symmetric, bool per_channel) {
  return q::ObserverOptions().kind(q::ObserverKind::kMinMax).dtype(dtype).symmetric(symmetric).per_channel(per_channel);
}

int64_t level_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.int_repr().to(torch::kInt) - b.int_repr().to(torch::kInt)).abs().max().item<int64_t>();
}

// Weights quantized (per channel when symmetric) and activations observed with min/max on the
// float layer's input `x` and ReLU'd output `y`.
void calibrate(q::Int8LayerImpl& layer, const torch::Tensor& weight, const torch::Tensor& bias, const torch::Tensor& x,
               const torch::Tensor& y, bool symmetric_weights) {
  auto w = q::make_observer(minmax(q::QDtype::kQInt8, symmetric_weights, symmetric_weights), weight.size(0));
  w->forward(weight);
  auto i = q::make_observer(minmax(q::QDtype::kQUInt8, false, false));
  auto o = q::make_observer(minmax(q::QDtype::kQUInt8, false, false));
  i->forward(x);
  o->forward(torch::relu(y));
  layer.set_weight(weight, bias, w->qparams());
  layer.set_input(i->qparams());
  layer.set_output(o->qparams());
}

// A static int8 Linear from `lin`, activations observed on `x`.
q::QuantizedLinear static_linear(torch::nn::Linear lin, const torch::Tensor& x, bool symmetric_weights = true) {
  q::QuantizedLinear layer(lin->weight.size(1), lin->weight.size(0), symmetric_weights, q::Activations::kStatic, true);
  calibrate(*layer, lin->weight, lin->bias, x, lin->forward(x), symmetric_weights);
  return layer;
}

// A static int8 Conv2d from `conv`, activations observed on `x`.
q::QuantizedConv2d static_conv(torch::nn::Conv2d conv, const torch::Tensor& x) {
  q::QuantizedConv2d layer(runtime::geometry_of(*conv), true, true);
  calibrate(*layer, conv->weight, conv->bias, x, conv->forward(x), true);
  return layer;
}

// What a static layer's integers mean: its quantized input and weights dequantized, the float
// operation `op`, ReLU, and the output quantized.
torch::Tensor float_emulation(
    const q::Int8LayerImpl& layer, const torch::Tensor& x,
    const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>& op) {
  const auto in = layer.input_qparams(), out = layer.output_qparams();
  const auto xq = at::quantize_per_tensor(x, in.scale.item<double>(), in.zero_point.item<int64_t>(), torch::kQUInt8);
  const auto y = torch::relu(op(xq.dequantize(), layer.dequantized_weight(), layer.float_bias()));
  return at::quantize_per_tensor(y, out.scale.item<double>(), out.zero_point.item<int64_t>(), torch::kQUInt8);
}

bool libtorch_sums_saturate() { return q::int8_sums_may_saturate(q::Backend::kOneDnn); }

const char* const kSaturates =
    "oneDNN's int8 sums saturate on this CPU path (no VNNI), so LibTorch's kernels are no reference here; the "
    "kernel tests check shrink's paths against the scalar reference";

// A case of the row kernels' tests: `rows` weight rows of `cols` columns, `n` random input rows,
// and what the GEMV's scalar reference makes of them, requantized and in float.
struct RowsCase {
  runtime::Int8GemvWeights w;
  torch::Tensor x;
  runtime::Int8GemvParams p;
  std::vector<uint8_t> ref;
  std::vector<float> ref_float;
  size_t size() const { return ref.size(); }
};

RowsCase rows_case(int64_t n, int64_t cols, int64_t rows = 39) {
  RowsCase c;
  c.w = random_gemv_weights(rows, cols);
  c.x = torch::randint(0, 256, {n, cols}).to(torch::kByte).contiguous();
  c.p = gemv_test_params(/*relu=*/cols == 128);
  c.ref.resize(static_cast<size_t>(n * c.w.rows));
  c.ref_float.resize(c.ref.size());
  runtime::int8_gemm_reference(c.w, c.x.data_ptr<uint8_t>(), n, c.p, c.ref.data());
  runtime::int8_gemm_float_reference(c.w, c.x.data_ptr<uint8_t>(), n, c.p, c.ref_float.data());
  return c;
}

}  // namespace

TEST(Int8Kernels, RowsOnTheConvolutionsTilesEqualTheGemvReferenceOnEveryPath) {
  torch::manual_seed(29);
  int vector_paths = 0;
  // Rows around the 6-pixel tiles and past a 96-row run; columns that leave a partial quad and
  // that fill whole ones; 39 output rows leave a partial group of channels, 100 a whole 64 and a
  // partial group after it (one row takes 64 channels at a time on AVX-VNNI).
  for (const int64_t n : {1, 5, 7, 13, 100}) {
    for (const int64_t cols : {17, 128, 300}) {
      for (const int64_t out : {39, 100}) {
        const auto c = rows_case(n, cols, out);
        const auto tiles = runtime::pack_int8_linear(c.w.values.data(), c.w.rows, c.w.cols, c.w.scales, c.w.bias);
        for (const auto path : {runtime::Int8Path::kReference, runtime::Int8Path::kAvx2, runtime::Int8Path::kAvxVnni,
                                runtime::Int8Path::kAvx512Vnni}) {
          if (!runtime::int8_path_available(path)) continue;
          vector_paths += path != runtime::Int8Path::kReference;
          std::vector<uint8_t> got(c.size());
          std::vector<float> got_float(c.size());
          runtime::int8_linear(tiles, c.x.data_ptr<uint8_t>(), n, c.p, got.data(), path);
          runtime::int8_linear_float(tiles, c.x.data_ptr<uint8_t>(), n, c.p, got_float.data(), path);
          // Static rows requantized, dynamic rows dequantized: equal, not close.
          EXPECT_EQ(c.ref, got) << n << " rows of " << cols << " to " << out << ", path "
                                << runtime::int8_path_name(path);
          EXPECT_EQ(c.ref_float, got_float)
              << n << " rows of " << cols << " to " << out << ", path " << runtime::int8_path_name(path);
        }
      }
    }
  }
  if (vector_paths == 0) GTEST_SKIP() << "no vector path on this CPU: only the convolution's reference ran";
}

TEST(Int8Kernels, OutputsBeyondTheInt32RangeSaturateInTheReferenceAndOnEveryPath) {
  torch::manual_seed(31);
  auto c = rows_case(5, 128);
  c.p.relu = false;
  // Biases of ±1e12 levels: converted to int32 unclamped, +1e12 would wrap to INT_MIN, so 0.
  for (size_t r = 0; r < c.w.bias.size(); ++r) c.w.bias[r] = r % 2 ? 1e12f : -1e12f;
  std::vector<uint8_t> expected(c.size());
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = (i % c.w.bias.size()) % 2 ? 255 : 0;
  std::vector<uint8_t> reference(c.size());
  runtime::int8_gemm_reference(c.w, c.x.data_ptr<uint8_t>(), 5, c.p, reference.data());
  EXPECT_EQ(reference, expected) << "the GEMV's reference";
  const auto tiles = runtime::pack_int8_linear(c.w.values.data(), c.w.rows, c.w.cols, c.w.scales, c.w.bias);
  for (const auto path : {runtime::Int8Path::kReference, runtime::Int8Path::kAvx2, runtime::Int8Path::kAvxVnni,
                          runtime::Int8Path::kAvx512Vnni}) {
    if (!runtime::int8_path_available(path)) continue;
    std::vector<uint8_t> on_tiles(c.size());
    runtime::int8_linear(tiles, c.x.data_ptr<uint8_t>(), 5, c.p, on_tiles.data(), path);
    EXPECT_EQ(on_tiles, expected) << "tiles, path " << runtime::int8_path_name(path);
  }
}

// On every CPU path (LibTorch's kernels are a reference only where their sums cannot saturate).
TEST(Int8Kernels, ABatchOfRowsOnShrinksKernelsIsTheFloatLinearOfItsIntegersWithinOneLevel) {
  torch::manual_seed(67);
  torch::nn::Linear lin(200, 70);
  const auto x = torch::randn({9, 200});
  auto layer = static_linear(lin, x);
  layer->set_kernels(Int8Kernels::kShrink);
  const auto expected = float_emulation(
      *layer, x,
      [](const torch::Tensor& a, const torch::Tensor& w, const torch::Tensor& b) { return at::linear(a, w, b); });
  EXPECT_LE(level_diff(layer->forward(x), expected), kMaxKernelLevelDiff)
      << "path " << runtime::int8_path_name(runtime::best_int8_path());
}

TEST(Int8Kernels, ABatchOfImagesOnShrinksKernelIsTheFloatConvolutionOfItsIntegersWithinOneLevel) {
  torch::manual_seed(71);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(5, 12, 3).padding(1).stride(2));
  const auto x = torch::randn({3, 5, 9, 10});
  auto layer = static_conv(conv, x);
  layer->set_kernels(Int8Kernels::kShrink);
  const auto expected =
      float_emulation(*layer, x, [](const torch::Tensor& a, const torch::Tensor& w, const torch::Tensor& b) {
        return at::conv2d(a, w, b, /*stride=*/2, /*padding=*/1);
      });
  EXPECT_LE(level_diff(layer->forward(x), expected.contiguous(at::MemoryFormat::ChannelsLast)), kMaxKernelLevelDiff)
      << runtime::int8_path_name(runtime::int8_conv2d_best_path());
}

TEST(Int8Kernels, ABatchOfRowsOnShrinksKernelsMatchesLibTorchsWithinOneLevel) {
  if (libtorch_sums_saturate()) GTEST_SKIP() << kSaturates;
  torch::manual_seed(41);
  torch::nn::Linear lin(200, 70);
  const auto x = torch::randn({6, 200});
  auto ours = static_linear(lin, x), theirs = static_linear(lin, x);
  ours->set_kernels(Int8Kernels::kShrink);
  theirs->set_kernels(Int8Kernels::kLibTorch);
  for (const auto& input : {x, x.view({2, 3, 200})}) {  // rows, and rows under leading dimensions
    const auto a = ours->forward(input), b = theirs->forward(input);
    ASSERT_EQ(a.sizes(), b.sizes());
    EXPECT_LE(level_diff(a, b), kMaxKernelLevelDiff) << input.sizes();
    EXPECT_EQ(a.q_scale(), b.q_scale());
    EXPECT_EQ(a.q_zero_point(), b.q_zero_point());
  }
}

TEST(Int8Kernels, ADynamicBatchOnShrinksKernelsIsQuantizedWithOneScaleAsLibTorchsKernelDoes) {
  torch::manual_seed(43);
  torch::nn::Linear lin(200, 70);
  auto w = q::make_observer(minmax(q::QDtype::kQInt8, true, true), 70);
  w->forward(lin->weight);
  q::QuantizedLinear ours(200, 70, true, q::Activations::kDynamic, false);
  q::QuantizedLinear theirs(200, 70, true, q::Activations::kDynamic, false);
  ours->set_kernels(Int8Kernels::kShrink);
  theirs->set_kernels(Int8Kernels::kLibTorch);
  for (auto* layer : {ours.get(), theirs.get()}) layer->set_weight(lin->weight, lin->bias, w->qparams());
  // Rows of very different ranges: quantized one row at a time, they would not match.
  auto x = torch::randn({2, 3, 200});
  x[0][0] *= 10;
  const auto a = ours->forward(x), b = theirs->forward(x);
  ASSERT_EQ(a.sizes(), b.sizes());
  const double scale = std::max(1.0, b.abs().max().item<double>());
  EXPECT_LE((a - b).abs().max().item<double>(), kDynamicRelativeTolerance * scale);
}

TEST(Int8Kernels, ABatchOfImagesOnShrinksConvolutionMatchesLibTorchsWithinOneLevel) {
  if (libtorch_sums_saturate()) GTEST_SKIP() << kSaturates;
  torch::manual_seed(47);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(8, 24, 3).padding(1).stride(2));
  const auto x = torch::randn({5, 8, 11, 13});
  auto ours = static_conv(conv, x), theirs = static_conv(conv, x);
  ours->set_kernels(Int8Kernels::kShrink);
  theirs->set_kernels(Int8Kernels::kLibTorch);
  const auto a = ours->forward(x), b = theirs->forward(x);
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_TRUE(a.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_LE(level_diff(a, b), kMaxKernelLevelDiff);
}

TEST(Int8Kernels, TheResidualAddOnEveryPathEqualsItsScalarReference) {
  torch::manual_seed(41);
  int vector_paths = 0;
  // Lengths around both vector widths, a tail, and more than one thread's share (1 << 15).
  for (const int64_t n : {1, 15, 16, 31, 32, 33, 100, 70000}) {
    const auto a = torch::randint(0, 256, {n}).to(torch::kByte).contiguous();
    const auto b = torch::randint(0, 256, {n}).to(torch::kByte).contiguous();
    // Output scales that use the levels, and one so small that most of them saturate.
    for (const float out_scale : {0.09f, 0.0004f}) {
      for (const bool relu : {false, true}) {
        runtime::Int8AddParams p;
        p.a_scale = 0.031f;
        p.a_zero_point = 121;
        p.b_scale = 0.047f;
        p.b_zero_point = 7;
        p.out_scale = out_scale;
        p.out_zero_point = 64;
        p.relu = relu;
        std::vector<uint8_t> ref(static_cast<size_t>(n));
        runtime::int8_add(a.data_ptr<uint8_t>(), b.data_ptr<uint8_t>(), n, p, ref.data(),
                          runtime::VectorPath::kReference);
        for (const auto path : {runtime::VectorPath::kAvx2, runtime::VectorPath::kAvx512}) {
          if (!runtime::vector_path_available(path)) continue;
          ++vector_paths;
          std::vector<uint8_t> got(ref.size());
          runtime::int8_add(a.data_ptr<uint8_t>(), b.data_ptr<uint8_t>(), n, p, got.data(), path);
          EXPECT_EQ(ref, got) << runtime::path_name(path) << ", " << n << " values, out scale " << out_scale
                              << ", relu " << relu;
        }
      }
    }
  }
  if (vector_paths == 0) GTEST_SKIP() << "no vector path on this CPU: the reference is the only path";
}

TEST(Int8Kernels, ShrinksResidualAddMatchesLibTorchsQuantizedAddWithinOneLevel) {
  if (!runtime::libtorch_has_op("quantized::add")) GTEST_SKIP() << "this LibTorch has no quantized::add to compare";
  torch::manual_seed(53);
  const auto a = at::quantize_per_tensor(torch::randn({4, 16, 7, 7}), 0.05, 120, torch::kQUInt8)
                     .contiguous(at::MemoryFormat::ChannelsLast);
  const auto b = at::quantize_per_tensor(torch::randn({4, 16, 7, 7}) * 2, 0.07, 100, torch::kQUInt8)
                     .contiguous(at::MemoryFormat::ChannelsLast);
  for (const bool relu : {false, true}) {
    models::ResidualAdd ours(relu), theirs(relu);
    for (auto* add : {ours.get(), theirs.get()}) {
      add->to_int8();
      runtime::QParams out;
      out.scale = torch::tensor({0.09f});
      out.zero_point = torch::tensor({int64_t{110}});
      out.dtype = runtime::QDtype::kQUInt8;
      add->set_output(out);
    }
    ours->set_kernels(Int8Kernels::kShrink);
    theirs->set_kernels(Int8Kernels::kLibTorch);
    const auto x = ours->forward(a, b), y = theirs->forward(a, b);
    ASSERT_EQ(x.sizes(), y.sizes());
    EXPECT_TRUE(x.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_EQ(x.q_scale(), y.q_scale());
    EXPECT_LE(level_diff(x, y), kMaxKernelLevelDiff) << "relu " << relu;
  }
}

TEST(Int8Kernels, AsymmetricWeightsOnShrinksKernelsAreRefusedNamingWhy) {
  torch::manual_seed(59);
  torch::nn::Linear lin(16, 8);
  const auto x = torch::randn({2, 16});
  auto layer = static_linear(lin, x, /*symmetric_weights=*/false);
  layer->set_kernels(Int8Kernels::kShrink);
  try {
    layer->forward(x);
    FAIL() << "ran asymmetric weights on shrink's kernels";
  } catch (const core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "shrink's kernels take symmetric weights (every zero point 0)")) << e.what();
    EXPECT_TRUE(contains(e.what(), "run it on LibTorch's kernels (int8 kernels libtorch)")) << e.what();
  }
}

// The quantizer's defaults keep activations to 7 bits where LibTorch's sums may saturate, so that
// they do not: LibTorch's kernels are a reference on every CPU path here.
TEST(Int8Kernels, AResNetOnShrinksKernelsAloneGivesLibTorchsPredictions) {
  torch::manual_seed(61);
  auto model = models::build_model("resnet", YAML::Load("{widths: [8, 16], blocks: 1}"), {{1, 12, 12}, 4});
  model.module->eval();
  const auto data = data::Dataset{torch::randn({256, 1, 12, 12}), torch::randint(0, 4, {256}), {}};
  q::PostTrainingQuantizer quantizer(model, {});
  quantizer.prepare();
  quantizer.calibrate(data, 4, 64);
  quantizer.convert(model);
  const auto probe = data.inputs.slice(0, 0, 64);
  torch::NoGradGuard no_grad;
  // Convolutions, the residual adds and the head's Linear.
  EXPECT_GE(q::set_int8_kernels(*model.module, Int8Kernels::kLibTorch), 6);
  const auto theirs = model.forward(probe);
  q::set_int8_kernels(*model.module, Int8Kernels::kShrink);
  const auto ours = model.forward(probe);
  // A level here and there, carried through the network: the logits stay within a few percent of
  // their spread and the predictions the same.
  const double spread = (theirs.max() - theirs.min()).item<double>();
  EXPECT_LT((ours - theirs).abs().max().item<double>(), 0.05 * spread);
  EXPECT_GE(ours.argmax(1).eq(theirs.argmax(1)).to(torch::kFloat).mean().item<double>(), 0.98);
}

TEST(Int8Kernels, EvalOnShrinksKernelsGivesTheAccuracyOfLibTorchs) {
  const auto path = write_recipe("int8_kernels_eval", synthetic_recipe(2, "  - quantize: {model: small}\n"));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto file = (out / "stage-1-quantize" / "small.pt").string();
  const auto ours = run_shrink("eval --json --int8-kernels shrink " + file);
  const auto theirs = run_shrink("eval --json --int8-kernels libtorch " + file);
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  ASSERT_EQ(theirs.exit_code, 0) << theirs.output;
  // 256 test samples: a level's difference may move one or two of them.
  EXPECT_NEAR(last_json_line(ours.output)["accuracy"].get<double>(),
              last_json_line(theirs.output)["accuracy"].get<double>(), 2.0 / 256 + 1e-9);
}

TEST(Int8Kernels, AnUnknownKernelChoiceIsAUsageErrorListingTheChoices) {
  const auto r = run_shrink("bench --int8-kernels fbgemm model.pt");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "--int8-kernels must be one of auto, shrink, libtorch; got 'fbgemm'")) << r.output;
}
