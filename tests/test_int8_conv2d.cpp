// shrink's own int8 Conv2d: every vector path equals the scalar reference exactly, the reference
// agrees with LibTorch's quantized convolution, an int8 Conv2d layer runs one image on it, the
// convolution max-pooled in one pass is the convolution pooled, and AVX2's paired quads stay exact.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "compress/quantize/backend.h"
#include "compress/quantize/observer.h"
#include "compress/quantize/quantized_conv2d.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "models/layer_stack.h"
#include "runtime/int8_conv2d.h"
#include "runtime/int8_kernels.h"

using namespace shrink;
namespace q = shrink::compress::quantize;

namespace {

// LibTorch's kernels and shrink's may round a product sum on either side of a level's midpoint.
constexpr int64_t kMaxConvLevelDiff = 1;

struct Case {
  runtime::Conv2dGeometry g;
  int64_t batch, height, width;
  bool relu;
};

// The convnet's two convolutions, and shapes that reach the tails: channels not in fours (a kernel
// row read past its end, against zero weights), output channels past one and not a whole group of
// 64 (or 8), strides, dilations (a kernel position a segment), uneven kernels and padding, kernel
// rows of many quads, images whose rows fit one run.
std::vector<Case> cases() {
  return {
      {{1, 32, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, 1, 28, 28, true},
      {{32, 64, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, 2, 14, 14, true},
      {{3, 20, 1, {5, 3}, {2, 1}, {2, 1}, {1, 2}}, 2, 11, 9, false},
      {{8, 70, 1, {1, 1}, {1, 1}, {0, 0}, {1, 1}}, 1, 5, 7, true},
      {{12, 5, 1, {3, 3}, {2, 2}, {2, 0}, {2, 1}}, 3, 9, 10, false},
      {{4, 16, 1, {3, 3}, {1, 3}, {1, 4}, {1, 1}}, 1, 6, 2, true},   // padding wider than the image
      {{3, 16, 1, {3, 3}, {1, 3}, {1, 4}, {1, 1}}, 2, 6, 2, false},  // the same, channels not in fours
      {{3, 8, 1, {7, 7}, {2, 2}, {3, 3}, {1, 1}}, 2, 15, 13, true},  // a stem: a kernel row of 21 bytes
      {{2, 16, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, 5, 3, 4, false},  // images smaller than a run
  };
}

runtime::Int8ConvWeights random_weights(const runtime::Conv2dGeometry& g) {
  const auto w = torch::randint(-128, 128, {g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]}).to(torch::kChar);
  const auto scales = (torch::rand({g.out_channels}) * 0.004 + 0.001).contiguous();
  const auto bias = (torch::randn({g.out_channels}) * 0.5).contiguous();
  return runtime::pack_int8_conv2d(g, w.data_ptr<int8_t>(),
                                   {scales.data_ptr<float>(), scales.data_ptr<float>() + g.out_channels},
                                   {bias.data_ptr<float>(), bias.data_ptr<float>() + g.out_channels});
}

runtime::Int8GemvParams params(bool relu) {
  runtime::Int8GemvParams p;
  p.in_scale = 0.02f;
  p.in_zero_point = 37;
  p.out_scale = 0.3f;
  p.out_zero_point = 90;
  p.relu = relu;
  return p;
}

q::ObserverOptions observer(q::QDtype dtype, bool per_channel) {
  return q::ObserverOptions()
      .kind(q::ObserverKind::kMinMax)
      .dtype(dtype)
      .symmetric(dtype == q::QDtype::kQInt8)
      .per_channel(per_channel);
}

// An int8 layer made from a float Conv2d's weights, with activations observed on `x`.
q::QuantizedConv2d int8_layer(torch::nn::Conv2d conv, const torch::Tensor& x, bool relu) {
  q::QuantizedConv2d layer(runtime::geometry_of(*conv), true, relu);
  auto w = q::make_observer(observer(q::QDtype::kQInt8, true), conv->options.out_channels());
  w->forward(conv->weight);
  auto in = q::make_observer(observer(q::QDtype::kQUInt8, false));
  auto out = q::make_observer(observer(q::QDtype::kQUInt8, false));
  in->forward(x);
  const auto y = conv->forward(x);
  out->forward(relu ? torch::relu(y) : y);
  layer->set_weight(conv->weight, conv->bias, w->qparams());
  layer->set_input(in->qparams());
  layer->set_output(out->qparams());
  return layer;
}

// Each path's outputs against the reference's: quint8, and float (the sums dequantized, with no
// rounding to levels to hide a wrong sum).
void expect_outputs_equal_the_reference(const runtime::Int8ConvWeights& w, const torch::Tensor& x,
                                        const runtime::Int8GemvParams& p, const std::string& what) {
  const auto& g = w.geometry;
  const int64_t batch = x.size(0), height = x.size(1), width = x.size(2);
  const auto [oh, ow] = runtime::int8_conv2d_output_size(g, height, width);
  const auto n = static_cast<size_t>(batch * oh * ow * g.out_channels);
  std::vector<uint8_t> ref(n);
  std::vector<float> ref_f(n);
  runtime::int8_conv2d_reference(w, x.data_ptr<uint8_t>(), batch, height, width, p, ref.data());
  runtime::int8_conv2d_float(w, x.data_ptr<uint8_t>(), batch, height, width, p, ref_f.data(),
                             runtime::Int8Path::kReference);
  for (const auto path : {runtime::Int8Path::kAvx2, runtime::Int8Path::kAvxVnni, runtime::Int8Path::kAvx512Vnni}) {
    if (!runtime::int8_path_available(path)) continue;
    std::vector<uint8_t> fast(n);
    std::vector<float> fast_f(n);
    runtime::int8_conv2d(w, x.data_ptr<uint8_t>(), batch, height, width, p, fast.data(), path);
    runtime::int8_conv2d_float(w, x.data_ptr<uint8_t>(), batch, height, width, p, fast_f.data(), path);
    EXPECT_EQ(ref, fast) << runtime::int8_path_name(path) << ", " << what;
    EXPECT_EQ(ref_f, fast_f) << runtime::int8_path_name(path) << ", " << what << " (float outputs)";
  }
}

// Weights of one value everywhere.
runtime::Int8ConvWeights constant_weights(const runtime::Conv2dGeometry& g, int8_t value) {
  const auto w = torch::full({g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]}, value, torch::kChar);
  return runtime::pack_int8_conv2d(g, w.data_ptr<int8_t>(), {0.001f}, std::vector<float>(g.out_channels, 0.25f));
}

}  // namespace

TEST(Int8Conv2d, EveryFastPathEqualsTheScalarReference) {
  torch::manual_seed(21);
  int64_t paths_run = 0;
  for (const auto& c : cases()) {
    const auto w = random_weights(c.g);
    const auto p = params(c.relu);
    const auto x = torch::randint(0, 256, {c.batch, c.height, c.width, c.g.in_channels}).to(torch::kByte);
    const auto [oh, ow] = runtime::int8_conv2d_output_size(c.g, c.height, c.width);
    std::vector<uint8_t> ref(static_cast<size_t>(c.batch * oh * ow * c.g.out_channels));
    runtime::int8_conv2d_reference(w, x.data_ptr<uint8_t>(), c.batch, c.height, c.width, p, ref.data());
    for (const auto path : {runtime::Int8Path::kAvx2, runtime::Int8Path::kAvxVnni, runtime::Int8Path::kAvx512Vnni}) {
      if (!runtime::int8_path_available(path)) continue;
      std::vector<uint8_t> fast(ref.size());
      runtime::int8_conv2d(w, x.data_ptr<uint8_t>(), c.batch, c.height, c.width, p, fast.data(), path);
      EXPECT_EQ(ref, fast) << runtime::int8_path_name(path) << ", " << c.g.in_channels << " → " << c.g.out_channels
                           << " channels";  // the same integer sums and float operations: exact
      ++paths_run;
    }
  }
  if (paths_run == 0) GTEST_SKIP() << "no AVX2 on this CPU (path): the reference is the only path";
}

// Activations quantized to 7 bits (reduce_range, the default on CPUs without VNNI) take AVX2's
// 16-bit pair sums, exact only below 128: these inputs exercise that tile on every shape.
TEST(Int8Conv2d, SevenBitInputsGiveTheReferencesOutputsOnEveryPath) {
  torch::manual_seed(22);
  if (!runtime::int8_path_available(runtime::Int8Path::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU (path)";
  for (const auto& c : cases()) {
    const auto w = random_weights(c.g);
    const auto x = torch::randint(0, 128, {c.batch, c.height, c.width, c.g.in_channels}).to(torch::kByte);
    expect_outputs_equal_the_reference(w, x, params(c.relu),
                                       core::cat(c.g.in_channels, " → ", c.g.out_channels, " channels"));
  }
}

// The largest pair sums each tile can meet: 127 · -128 twice fits 16 bits (-32512); 255 · -128 twice
// does not (-65280), so a band holding a byte of 128 or more must not take the 16-bit sums.
TEST(Int8Conv2d, PairSumsBeyondSixteenBitsStayExact) {
  if (!runtime::int8_path_available(runtime::Int8Path::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU (path)";
  const runtime::Conv2dGeometry g{32, 16, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}};
  const auto w = constant_weights(g, -128);
  auto p = params(false);
  for (const int64_t value : {127, 128, 255}) {
    const auto x = torch::full({1, 6, 6, g.in_channels}, value, torch::kByte);
    expect_outputs_equal_the_reference(w, x, p, core::cat("every input ", value));
  }
  // 7-bit inputs whose padding, the zero point, is not: in a small image most of a band (the
  // widening tile), in a large one a few of its bytes (clamped, their excess added back).
  p.in_zero_point = 200;
  for (const int64_t width : {6, 100}) {
    expect_outputs_equal_the_reference(w, torch::full({1, 8, width, g.in_channels}, 127, torch::kByte), p,
                                       core::cat("zero point 200, 8×", width));
  }
}

// Bytes above 127 here and there (values past their calibrated range) are clamped for the 16-bit
// sums and their excess added back: on every shape (strides, dilations, padding), each output
// that reads one is still exact.
TEST(Int8Conv2d, SevenBitInputsWithAFewLargerBytesGiveTheReferencesOutputs) {
  if (!runtime::int8_path_available(runtime::Int8Path::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU (path)";
  torch::manual_seed(24);
  for (const auto& c : cases()) {
    const auto w = random_weights(c.g);
    auto x = torch::randint(0, 128, {c.batch, c.height, c.width, c.g.in_channels}).to(torch::kByte);
    const auto large = torch::rand(x.sizes()) < 0.01;
    x.masked_scatter_(large, torch::randint(128, 256, x.sizes()).to(torch::kByte));
    x.view({-1})[0] = 255;  // at least one, in a corner, beside the padding
    expect_outputs_equal_the_reference(w, x, params(c.relu),
                                       core::cat(c.g.in_channels, " → ", c.g.out_channels, " channels"));
  }
}

// Each band of rows chooses its tile: one image of 7-bit inputs beside one with a single large
// byte, and a large byte in an image's last rows only.
TEST(Int8Conv2d, ImagesOfSevenAndEightBitInputsInOneBatchEachGiveTheReferences) {
  if (!runtime::int8_path_available(runtime::Int8Path::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU (path)";
  torch::manual_seed(23);
  const runtime::Conv2dGeometry g{32, 64, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}};
  const auto w = random_weights(g);
  auto x = torch::randint(0, 128, {3, 14, 14, g.in_channels}).to(torch::kByte);
  x[1][7][3][5] = 250;
  x[2][13][13][31] = 255;
  expect_outputs_equal_the_reference(w, x, params(true), "a batch of three");
}

// Weights loaded with --allow-non-finite can make a sum's float NaN or infinite: quantized, +∞ and
// huge values are 255, −∞ and NaN 0; under a ReLU, NaN is 0 before quantizing, so the zero point.
// Every path gives the reference's bytes and floats (NaN where it has NaN), 7- and 8-bit inputs.
TEST(Int8Conv2d, NonFiniteSumsSaturateAndAReluMakesNanZeroOnEveryPath) {
  torch::manual_seed(25);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::array<float, 6> specials{nan, inf, -inf, 3e30f, -3e30f, 0.25f};
  for (const runtime::Conv2dGeometry& g : {runtime::Conv2dGeometry{32, 64, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
                                           runtime::Conv2dGeometry{1, 32, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
                                           runtime::Conv2dGeometry{8, 70, 1, {1, 1}, {1, 1}, {0, 0}, {1, 1}}}) {
    const auto wq =
        torch::randint(-128, 128, {g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]}).to(torch::kChar);
    std::vector<float> scales(static_cast<size_t>(g.out_channels), 0.003f), bias(scales.size());
    for (size_t o = 0; o < bias.size(); ++o) bias[o] = specials[o % specials.size()];
    const auto w = runtime::pack_int8_conv2d(g, wq.data_ptr<int8_t>(), scales, bias);
    for (const int64_t top : {128, 256}) {
      const auto x = torch::randint(0, top, {2, 6, 5, g.in_channels}).to(torch::kByte);
      const auto [oh, ow] = runtime::int8_conv2d_output_size(g, 6, 5);
      const auto n = static_cast<size_t>(2 * oh * ow * g.out_channels);
      for (const bool relu : {false, true}) {
        const auto p = params(relu);
        const std::string what =
            core::cat(g.in_channels, " → ", g.out_channels, ", inputs below ", top, relu ? ", relu" : "");
        std::vector<uint8_t> ref(n);
        std::vector<float> ref_f(n);
        runtime::int8_conv2d_reference(w, x.data_ptr<uint8_t>(), 2, 6, 5, p, ref.data());
        runtime::int8_conv2d_float(w, x.data_ptr<uint8_t>(), 2, 6, 5, p, ref_f.data(), runtime::Int8Path::kReference);
        const auto zp = static_cast<uint8_t>(p.out_zero_point);
        EXPECT_EQ(ref[0], relu ? zp : 0) << what << ": NaN";
        EXPECT_EQ(ref[1], 255) << what << ": +inf";
        EXPECT_EQ(ref[2], relu ? zp : 0) << what << ": -inf";
        EXPECT_EQ(ref[3], 255) << what << ": 3e30";
        EXPECT_EQ(ref[4], relu ? zp : 0) << what << ": -3e30";
        EXPECT_EQ(std::isnan(ref_f[0]), !relu) << what;
        for (const auto path :
             {runtime::Int8Path::kAvx2, runtime::Int8Path::kAvxVnni, runtime::Int8Path::kAvx512Vnni}) {
          if (!runtime::int8_path_available(path)) continue;
          std::vector<uint8_t> fast(n);
          std::vector<float> fast_f(n);
          runtime::int8_conv2d(w, x.data_ptr<uint8_t>(), 2, 6, 5, p, fast.data(), path);
          runtime::int8_conv2d_float(w, x.data_ptr<uint8_t>(), 2, 6, 5, p, fast_f.data(), path);
          EXPECT_EQ(ref, fast) << runtime::int8_path_name(path) << ", " << what;
          size_t differ = 0;
          for (size_t i = 0; i < n; ++i) {
            const bool same = std::isnan(ref_f[i]) ? std::isnan(fast_f[i]) : ref_f[i] == fast_f[i];
            differ += same ? 0 : 1;
          }
          EXPECT_EQ(differ, 0u) << runtime::int8_path_name(path) << ", " << what << " (float outputs)";
        }
      }
    }
  }
}

TEST(Int8Conv2d, ReferenceSumsWhatAFloatConvolutionOfTheIntegersGives) {
  // The specification, checked against arithmetic done another way: (x − zp) convolved with the
  // integer weights in float64 (exact for these sizes), then the same requantization.
  torch::manual_seed(22);
  for (const auto& c : cases()) {
    const auto wi =
        torch::randint(-128, 128, {c.g.out_channels, c.g.in_channels, c.g.kernel[0], c.g.kernel[1]}).to(torch::kChar);
    const std::vector<float> scales(static_cast<size_t>(c.g.out_channels), 0.003f), bias(scales.size(), 0.25f);
    const auto w = runtime::pack_int8_conv2d(c.g, wi.data_ptr<int8_t>(), scales, bias);
    const auto p = params(c.relu);
    const auto x = torch::randint(0, 256, {c.batch, c.height, c.width, c.g.in_channels}).to(torch::kByte);
    const auto [oh, ow] = runtime::int8_conv2d_output_size(c.g, c.height, c.width);
    std::vector<uint8_t> ref(static_cast<size_t>(c.batch * oh * ow * c.g.out_channels));
    runtime::int8_conv2d_reference(w, x.data_ptr<uint8_t>(), c.batch, c.height, c.width, p, ref.data());
    const auto centred = x.permute({0, 3, 1, 2}).to(torch::kDouble) - p.in_zero_point;
    const auto sums = torch::conv2d(centred, wi.to(torch::kDouble), {}, c.g.stride, c.g.padding, c.g.dilation);
    auto y = sums * static_cast<double>(p.in_scale * scales[0]) + bias[0];
    if (c.relu) y = y.clamp_min(0);
    const auto expected = (y / p.out_scale)
                              .round()
                              .add(p.out_zero_point)
                              .clamp(0, 255)
                              .permute({0, 2, 3, 1})
                              .contiguous()
                              .to(torch::kInt);
    const auto got = torch::from_blob(ref.data(), {c.batch, oh, ow, c.g.out_channels}, torch::kByte).to(torch::kInt);
    EXPECT_LE((got - expected).abs().max().item<int64_t>(), 1) << c.g.in_channels << " → " << c.g.out_channels;
  }
}

// Conv2d options for a case's geometry.
torch::nn::Conv2d float_conv(const runtime::Conv2dGeometry& g) {
  const auto pair = [](const std::vector<int64_t>& v) { return torch::ExpandingArray<2>({v[0], v[1]}); };
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(g.in_channels, g.out_channels, pair(g.kernel))
                               .stride(pair(g.stride))
                               .padding(pair(g.padding))
                               .dilation(pair(g.dilation)));
}

TEST(Int8Conv2d, OneImageThroughTheLayerIsWhatTheReferenceComputes) {
  if (!q::auto_prefers_own_conv2d())
    GTEST_SKIP() << "the layer runs LibTorch's kernel for one image on this CPU (path: "
                 << runtime::int8_path_name(runtime::int8_conv2d_best_path()) << ", int8 VNNI "
                 << core::cpu_has_int8_vnni() << ")";
  torch::manual_seed(23);
  for (const auto& c : cases()) {
    auto conv = float_conv(c.g);
    const auto x = torch::randn({1, c.g.in_channels, c.height, c.width});
    auto layer = int8_layer(conv, x, c.relu);
    const auto y = layer->forward(x);
    const auto qx = at::quantize_per_tensor(x, layer->input_qparams().scale.item<double>(),
                                            layer->input_qparams().zero_point.item<int64_t>(), at::kQUInt8);
    const auto nhwc = qx.int_repr().permute({0, 2, 3, 1}).contiguous();
    const auto wq = layer->int8_weight().contiguous();
    const auto scales = layer->weight_qparams().scale.to(torch::kFloat).contiguous();
    const auto bias = layer->float_bias().contiguous();
    const auto packed = runtime::pack_int8_conv2d(c.g, wq.data_ptr<int8_t>(),
                                                  {scales.data_ptr<float>(), scales.data_ptr<float>() + scales.numel()},
                                                  {bias.data_ptr<float>(), bias.data_ptr<float>() + bias.numel()});
    runtime::Int8GemvParams p;
    p.in_scale = static_cast<float>(qx.q_scale());
    p.in_zero_point = static_cast<int32_t>(qx.q_zero_point());
    p.out_scale = static_cast<float>(y.q_scale());
    p.out_zero_point = static_cast<int32_t>(y.q_zero_point());
    p.relu = c.relu;
    const auto [oh, ow] = runtime::int8_conv2d_output_size(c.g, c.height, c.width);
    std::vector<uint8_t> ref(static_cast<size_t>(oh * ow * c.g.out_channels));
    runtime::int8_conv2d_reference(packed, nhwc.data_ptr<uint8_t>(), 1, c.height, c.width, p, ref.data());
    const auto expected =
        torch::from_blob(ref.data(), {1, oh, ow, c.g.out_channels}, torch::kByte).permute({0, 3, 1, 2});
    EXPECT_TRUE(torch::equal(y.int_repr(), expected)) << c.g.in_channels << " → " << c.g.out_channels;
  }
}

TEST(Int8Conv2d, OneImageAgreesWithLibTorchsKernelWithinOneLevel) {
  if (q::int8_sums_may_saturate(q::Backend::kOneDnn)) {
    GTEST_SKIP() << "oneDNN's int8 sums saturate on this CPU path (no VNNI), so LibTorch's kernel is no reference "
                    "here; EveryFastPathEqualsTheScalarReference checks shrink's kernel on every path";
  }
  torch::manual_seed(23);
  for (const auto& c : cases()) {
    auto conv = float_conv(c.g);
    const auto x = torch::randn({1, c.g.in_channels, c.height, c.width});
    auto ours = int8_layer(conv, x, c.relu), theirs = int8_layer(conv, x, c.relu);
    theirs->set_kernels(runtime::Int8Kernels::kLibTorch);
    const auto a = ours->forward(x), b = theirs->forward(x);
    ASSERT_EQ(a.sizes(), b.sizes());
    EXPECT_LE((a.int_repr().to(torch::kInt) - b.int_repr().to(torch::kInt)).abs().max().item<int64_t>(),
              kMaxConvLevelDiff)
        << c.g.in_channels << " → " << c.g.out_channels;
    EXPECT_EQ(a.q_scale(), b.q_scale());
    EXPECT_EQ(a.q_zero_point(), b.q_zero_point());
  }
}

TEST(Int8Conv2d, ChannelsLastAndContiguousInputsGiveTheSameOutput) {
  torch::manual_seed(24);
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 24, 3).padding(1));
  const auto x = torch::randn({1, 16, 9, 9});
  auto layer = int8_layer(conv, x, true);
  const auto qx = at::quantize_per_tensor(x, layer->input_qparams().scale.item<double>(),
                                          layer->input_qparams().zero_point.item<int64_t>(), at::kQUInt8);
  const auto a = layer->forward(qx), b = layer->forward(qx.contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(a.int_repr(), b.int_repr()));
  EXPECT_TRUE(a.is_contiguous(at::MemoryFormat::ChannelsLast));
}

TEST(Int8Conv2d, GroupedWeightsAreRefusedNamingTheGroups) {
  const runtime::Conv2dGeometry g{4, 4, 2, {3, 3}, {1, 1}, {1, 1}, {1, 1}};
  const std::vector<int8_t> w(4 * 2 * 9, 1);
  try {
    runtime::pack_int8_conv2d(g, w.data(), {0.1f}, std::vector<float>(4, 0.0f));
    FAIL() << "grouped weights were packed";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("groups 1, got 2"), std::string::npos) << e.what();
  }
}

TEST(Int8Conv2d, AnInputSmallerThanTheKernelIsAnErrorNamingItsSize) {
  const runtime::Conv2dGeometry g{1, 1, 1, {5, 5}, {1, 1}, {0, 0}, {1, 1}};
  try {
    runtime::int8_conv2d_output_size(g, 3, 8);
    FAIL() << "a 3x8 input was accepted by a 5x5 kernel";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("input of 3x8 is smaller than its kernel's span 5"), std::string::npos)
        << e.what();
  }
}

namespace {

// The pooled outputs of every path against the reference's convolution pooled after it.
void expect_pooled_outputs_equal_the_pooled_reference(const runtime::Int8ConvWeights& w, const torch::Tensor& x,
                                                      const runtime::Int8GemvParams& p, const std::string& what) {
  const auto& g = w.geometry;
  const int64_t batch = x.size(0), height = x.size(1), width = x.size(2), oc = g.out_channels;
  const auto [oh, ow] = runtime::int8_conv2d_output_size(g, height, width);
  std::vector<uint8_t> conv(static_cast<size_t>(batch * oh * ow * oc));
  runtime::int8_conv2d_reference(w, x.data_ptr<uint8_t>(), batch, height, width, p, conv.data());
  const auto want = torch::max_pool2d(
      torch::from_blob(conv.data(), {batch, oh, ow, oc}, torch::kByte).permute({0, 3, 1, 2}).to(torch::kFloat), 2);
  for (const auto path : {runtime::Int8Path::kReference, runtime::Int8Path::kAvx2, runtime::Int8Path::kAvxVnni,
                          runtime::Int8Path::kAvx512Vnni}) {
    if (!runtime::int8_path_available(path)) continue;
    std::vector<uint8_t> pooled(static_cast<size_t>(batch * (oh / 2) * (ow / 2) * oc));
    runtime::int8_conv2d_max_pool2x2(w, x.data_ptr<uint8_t>(), batch, height, width, p, pooled.data(), path);
    const auto got = torch::from_blob(pooled.data(), {batch, oh / 2, ow / 2, oc}, torch::kByte).permute({0, 3, 1, 2});
    EXPECT_TRUE(torch::equal(got.to(torch::kFloat), want)) << runtime::int8_path_name(path) << ", " << what;
  }
}

}  // namespace

// Pooling the sums before requantizing: on every shape whose output holds a 2x2 window (odd sizes
// drop a row and a column), for 7-bit inputs, a few larger bytes among them, and 8-bit inputs.
TEST(Int8Conv2d, MaxPooledOutputsOnEveryPathAreTheConvolutionsPooled) {
  torch::manual_seed(25);
  for (const auto& c : cases()) {
    const auto [oh, ow] = runtime::int8_conv2d_output_size(c.g, c.height, c.width);
    if (oh < 2 || ow < 2) continue;
    const auto w = random_weights(c.g);
    const auto shape = std::vector<int64_t>{c.batch, c.height, c.width, c.g.in_channels};
    auto seven = torch::randint(0, 128, shape).to(torch::kByte);
    auto some_larger = seven.clone();
    some_larger.masked_scatter_(torch::rand(shape) < 0.01, torch::randint(128, 256, shape).to(torch::kByte));
    some_larger.view({-1})[0] = 255;
    const auto eight = torch::randint(0, 256, shape).to(torch::kByte);
    const auto what = core::cat(c.g.in_channels, " → ", c.g.out_channels, " channels, ", c.height, "x", c.width);
    expect_pooled_outputs_equal_the_pooled_reference(w, seven, params(c.relu), what + ", 7-bit");
    expect_pooled_outputs_equal_the_pooled_reference(w, some_larger, params(c.relu), what + ", a few bytes > 127");
    expect_pooled_outputs_equal_the_pooled_reference(w, eight, params(c.relu), what + ", 8-bit");
  }
}

// A negative multiplier reverses the order of a window's sums: the largest output is then not the
// largest sum's, and the kernel must pool after requantizing.
TEST(Int8Conv2d, MaxPoolingWithANegativeWeightScaleStillGivesTheConvolutionsPooled) {
  torch::manual_seed(26);
  const runtime::Conv2dGeometry g{8, 16, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}};
  const auto wv = torch::randint(-128, 128, {16, 8, 3, 3}).to(torch::kChar);
  std::vector<float> scales(16, 0.003f);
  scales[5] = -0.003f;
  const auto w = runtime::pack_int8_conv2d(g, wv.data_ptr<int8_t>(), scales, std::vector<float>(16, 0.5f));
  const auto x = torch::randint(0, 128, {2, 10, 10, 8}).to(torch::kByte);
  expect_pooled_outputs_equal_the_pooled_reference(w, x, params(false), "scale[5] < 0");
}

TEST(Int8Conv2d, MaxPoolingAnOutputSmallerThanTheWindowIsAnError) {
  const runtime::Conv2dGeometry g{4, 8, 1, {3, 3}, {1, 1}, {0, 0}, {1, 1}};
  const auto w = constant_weights(g, 1);
  const auto x = torch::zeros({1, 3, 5, 4}, torch::kByte);  // a 1x3 output
  std::vector<uint8_t> out(8);
  try {
    runtime::int8_conv2d_max_pool2x2(w, x.data_ptr<uint8_t>(), 1, 3, 5, params(false), out.data());
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("1x3 is smaller than the pooling window"), std::string::npos) << e.what();
  }
}

// In a layer stack, an int8 convolution, the Identity its ReLU became and a 2x2 max pooling give
// what the three give one by one, on shrink's kernel (pooled in one pass) and on LibTorch's.
TEST(Int8Conv2d, ALayerStackPoolsAnInt8ConvolutionAsItsLayersOneByOne) {
  torch::manual_seed(27);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 16, 3).padding(1));
  const auto x = torch::randn({2, 3, 9, 10});
  auto layer = int8_layer(conv, x, true);
  // 7-bit inputs, as where sums may saturate: the tile that pools before requantizing.
  auto in = q::make_observer(observer(q::QDtype::kQUInt8, false).reduce_range(true));
  in->forward(x);
  layer->set_input(in->qparams());
  models::LayerStack stack;
  stack->push_back(layer);
  stack->push_back(torch::nn::Identity());
  stack->push_back(torch::nn::MaxPool2d(2));
  stack->eval();
  for (const auto kernels : {runtime::Int8Kernels::kShrink, runtime::Int8Kernels::kLibTorch}) {
    if (kernels == runtime::Int8Kernels::kLibTorch && !runtime::libtorch_has_op("quantized::conv2d_prepack")) continue;
    SCOPED_TRACE(core::name_of(kernels));
    layer->set_kernels(kernels);
    auto one_by_one = x;
    for (size_t i = 0; i < stack->size(); ++i) one_by_one = stack->run_layer(i, one_by_one);
    const auto fused = stack->forward(x);
    ASSERT_EQ(fused.sizes(), one_by_one.sizes());
    EXPECT_TRUE(torch::equal(fused.int_repr(), one_by_one.int_repr()));
  }
}

namespace {

// Weights as training leaves them, mostly small beside each channel's largest: most quads pair.
runtime::Int8ConvWeights trained_weights(const runtime::Conv2dGeometry& g) {
  const auto w = (torch::randn({g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]}) * 30)
                     .round()
                     .clamp(-128, 127)
                     .to(torch::kChar);
  const auto scales = (torch::rand({g.out_channels}) * 0.004 + 0.001).contiguous();
  return runtime::pack_int8_conv2d(g, w.data_ptr<int8_t>(),
                                   {scales.data_ptr<float>(), scales.data_ptr<float>() + g.out_channels},
                                   std::vector<float>(static_cast<size_t>(g.out_channels), 0.5f));
}

// A 1×1 convolution of 8 input channels (two quads) to 16 whose every output channel has the
// weights `first` on input channels 0–3 and `second` on 4–7.
runtime::Int8ConvWeights two_quads(std::array<int8_t, 4> first, std::array<int8_t, 4> second) {
  const runtime::Conv2dGeometry g{8, 16, 1, {1, 1}, {1, 1}, {0, 0}, {1, 1}};
  std::vector<int8_t> w;
  for (int o = 0; o < 16; ++o) {
    w.insert(w.end(), first.begin(), first.end());
    w.insert(w.end(), second.begin(), second.end());
  }
  return runtime::pack_int8_conv2d(g, w.data(), {0.001f}, std::vector<float>(16, 0.25f));
}

}  // namespace

// AVX2's 7-bit tile adds two quads' 16-bit pair sums before widening them. Where training's
// weights let most quads pair, every shape still gives the reference's outputs, convolved and
// pooled, for random 7-bit inputs and for the largest (every byte 127).
TEST(Int8Conv2d, PairedQuadsOfTrainedWeightsGiveTheReferencesOutputsOnEveryShape) {
  if (!runtime::int8_path_available(runtime::Int8Path::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU (path)";
  torch::manual_seed(28);
  for (const auto& c : cases()) {
    const auto w = trained_weights(c.g);
    const auto what = core::cat(c.g.in_channels, " → ", c.g.out_channels, " channels");
    ASSERT_GT(w.narrow_pairs[0], 0) << what << ": no quads paired, the fixture tests nothing new";
    const auto shape = std::vector<int64_t>{c.batch, c.height, c.width, c.g.in_channels};
    const auto seven = torch::randint(0, 128, shape).to(torch::kByte);
    expect_outputs_equal_the_reference(w, seven, params(c.relu), what);
    expect_outputs_equal_the_reference(w, torch::full(shape, 127, torch::kByte), params(c.relu), what + ", all 127");
    const auto [oh, ow] = runtime::int8_conv2d_output_size(c.g, c.height, c.width);
    if (oh >= 2 && ow >= 2) expect_pooled_outputs_equal_the_pooled_reference(w, seven, params(c.relu), what);
  }
}

// Every lane's weights of one sign sum to at most 258 in magnitude over a pair (127 · 258 fits 16
// bits, 127 · 259 does not), and each quad with a non-zero weight is read exactly once.
TEST(Int8Conv2d, QuadsPairOnlyWhereNoSevenBitInputCanLeaveSixteenBits) {
  torch::manual_seed(29);
  const runtime::Conv2dGeometry g{32, 40, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}};
  auto wv = (torch::randn({40, 32, 3, 3}) * 40).round().clamp(-128, 127);
  wv.slice(1, 8, 12).zero_();  // a quad of zeros in every kernel position
  wv = wv.to(torch::kChar).contiguous();
  const auto w = runtime::pack_int8_conv2d(g, wv.data_ptr<int8_t>(), {0.001f}, std::vector<float>(40, 0.0f));
  const int64_t total = w.segments * w.segment_quads, oc16 = 48;
  for (int64_t b = 0; b < oc16 / 16; ++b) {
    const int64_t pairs = w.narrow_pairs[static_cast<size_t>(b)], singles = w.narrow_singles[static_cast<size_t>(b)];
    std::vector<int32_t> read(w.narrow_order.begin() + b * total,
                              w.narrow_order.begin() + b * total + 2 * pairs + singles);
    std::vector<int32_t> nonzero;
    for (int32_t q = 0; q < total; ++q) {
      const int8_t* v = w.quads.data() + (q * oc16 + b * 16) * 4;
      if (std::any_of(v, v + 64, [](int8_t x) { return x != 0; })) nonzero.push_back(q);
    }
    std::sort(read.begin(), read.end());
    EXPECT_EQ(read, nonzero) << "block " << b;
    EXPECT_LT(nonzero.size(), static_cast<size_t>(total)) << "block " << b << ": the zero quads were not left out";
    for (int64_t i = 0; i < 2 * pairs; i += 2) {
      for (int lane = 0; lane < 32; ++lane) {
        int positive = 0, negative = 0;
        for (int k = 0; k < 2; ++k) {
          const int8_t* v = w.narrow_quads.data() + (b * total + i + k) * 64;
          for (int j = 0; j < 2; ++j) (v[2 * lane + j] > 0 ? positive : negative) += std::abs(v[2 * lane + j]);
        }
        EXPECT_LE(positive, runtime::kNarrowPairLimit) << "block " << b << ", pair " << i / 2 << ", lane " << lane;
        EXPECT_LE(negative, runtime::kNarrowPairLimit) << "block " << b << ", pair " << i / 2 << ", lane " << lane;
      }
    }
  }
}

// At the limit two quads pair; one more and they do not, and every input of 127 gives the
// reference's sums either way (127 · 259 would have wrapped in 16 bits).
TEST(Int8Conv2d, TwoQuadsPairAtTheLimitAndNotOneLevelPastIt) {
  const auto x = torch::full({1, 3, 3, 8}, 127, torch::kByte);
  auto p = params(false);
  p.in_zero_point = 0;
  p.out_scale = 1.0f;
  for (const int8_t sign : {1, -1}) {
    for (const int8_t last : {66, 67}) {
      const auto w =
          two_quads({int8_t(64 * sign), int8_t(64 * sign), 0, 0}, {int8_t(64 * sign), int8_t(last * sign), 0, 0});
      const auto what = core::cat("lane weights ", 64 * sign, ", ", 64 * sign, ", ", 64 * sign, ", ", last * sign);
      EXPECT_EQ(w.narrow_pairs[0], last == 66 ? 1 : 0) << what;
      if (runtime::int8_path_available(runtime::Int8Path::kAvx2)) expect_outputs_equal_the_reference(w, x, p, what);
    }
  }
  // Opposite signs bound each other: 254 positive and 256 negative pair.
  const auto mixed = two_quads({127, 127, 0, 0}, {-128, -128, 0, 0});
  EXPECT_EQ(mixed.narrow_pairs[0], 1);
  if (runtime::int8_path_available(runtime::Int8Path::kAvx2)) {
    auto half = x.clone();
    half.slice(3, 4, 8).zero_();
    expect_outputs_equal_the_reference(mixed, half, p, "127, 127 | -128, -128 on inputs 127, 127 | 0, 0");
    expect_outputs_equal_the_reference(mixed, x, p, "127, 127 | -128, -128 on inputs of 127");
  }
}
