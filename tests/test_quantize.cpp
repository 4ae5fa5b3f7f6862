// Quantization: observers give PyTorch's parameters, the scalar reference agrees with ATen's
// quantizer, int8 layers approximate their float layers, and int8 models survive every format.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <iostream>

#include "compress/prune/l1_pruner.h"
#include "compress/quantize/observer.h"
#include "compress/quantize/quantized_conv2d.h"
#include "compress/quantize/quantized_linear.h"
#include "compress/quantize/quantizer.h"
#include "data/synthetic.h"
#include "helpers.h"
#include "io/pth_format.h"
#include "io/state_dict.h"
#include "models/registry.h"
#include "models/restore.h"
#include "runtime/int8_conv2d.h"
#include "runtime/int8_gemv.h"
#include "runtime/qparams.h"
#include "train/metrics.h"
#include "train/trainer.h"

using namespace shrink;
using namespace shrink::testing;
namespace q = shrink::compress::quantize;
namespace fs = std::filesystem;

namespace {

// ATen's vectorised quantizer may round a value lying within float error of a half step the
// other way: at most one level, on a small share of elements.
constexpr int64_t kMaxLevelDiff = 1;
constexpr double kMaxShareOffByOne = 1e-3;
// An int8 model's logits against its float model's, relative to the logits' spread.
constexpr double kMaxInt8RelativeError = 0.08;

q::ObserverOptions opts(const std::string& kind, q::QDtype dtype, bool symmetric, bool per_channel = false,
                        bool reduce_range = false) {
  return q::ObserverOptions()
      .kind(core::enum_from_name<q::ObserverKind>(kind, "observer kind"))
      .dtype(dtype)
      .symmetric(symmetric)
      .per_channel(per_channel)
      .reduce_range(reduce_range);
}

models::Blueprint blueprint_of(const std::string& arch, const std::string& options, std::vector<int64_t> shape,
                               int64_t classes = 4) {
  models::Blueprint b;
  b.arch = arch;
  b.options = YAML::Load(options);
  b.input = {std::move(shape), classes};
  return b;
}

// Inputs the model has seen in calibration, and the float logits on them.
struct Calibrated {
  models::Model model;
  models::Blueprint blueprint;
  torch::Tensor probe;
  torch::Tensor float_logits;
  q::QuantizationSummary summary;
};

Calibrated quantized(const std::string& arch, const std::string& options, q::QuantizeOptions qo = {},
                     bool train_bn = true) {
  torch::manual_seed(3);
  Calibrated c;
  c.blueprint = blueprint_of(arch, options, {1, 12, 12});
  c.model = models::build(c.blueprint);
  if (train_bn) {  // non-trivial BatchNorm statistics
    torch::NoGradGuard no_grad;
    c.model.module->train();
    for (int i = 0; i < 4; ++i) c.model.forward(torch::randn({32, 1, 12, 12}));
  }
  c.model.module->eval();
  const auto data = data::Dataset{torch::randn({256, 1, 12, 12}), torch::randint(0, 4, {256}), {}};
  c.probe = data.inputs.slice(0, 0, 64);
  {
    torch::NoGradGuard no_grad;
    c.float_logits = c.model.forward(c.probe);
  }
  q::PostTrainingQuantizer quantizer(c.model, qo);
  quantizer.prepare();
  quantizer.calibrate(data, 4, 64);
  c.blueprint.transforms.push_back(quantizer.convert(c.model));
  c.summary = quantizer.summary();
  return c;
}

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / (b.max() - b.min())).item<double>();
}

}  // namespace

TEST(Observers, ScaleAndZeroPointEqualTorchAoQuantization) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("observers_vs_torch");
  torch::manual_seed(11);
  const auto a = (torch::randn({4, 300}) * 0.3).clamp(-0.99, 0.99);
  const auto b = torch::randn({4, 300}) * 2.5 + 0.7;
  const auto c = torch::rand({4, 300}) * 3.0 - 0.5;
  const auto w = torch::randn({6, 3, 3, 3}) * torch::linspace(0.05, 1.0, 6).reshape({6, 1, 1, 1});
  const auto d = a.flatten().flip(0).reshape({4, 300});  // same range as `a`
  io::write_pth(dir / "in.pth", {{"a", a, false}, {"b", b, false}, {"c", c, false}, {"d", d, false}, {"w", w, false}});
  const auto r = run_command("/usr/bin/python3 " + tests_dir() + "/python/observer_qparams.py " +
                             (dir / "in.pth").string() + " " + (dir / "out.pth").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::map<std::string, torch::Tensor> expected;
  for (const auto& e : io::read_pth(dir / "out.pth")) expected[e.name] = e.tensor;

  using Q = q::QDtype;
  const std::map<std::string, torch::Tensor> tensors = {{"a", a}, {"b", b}, {"c", c}, {"d", d}, {"w", w}};
  const std::vector<std::tuple<std::string, q::ObserverOptions, std::string>> cases = {
      {"minmax_affine_quint8", opts("minmax", Q::kQUInt8, false), "ab"},
      {"minmax_symmetric_qint8", opts("minmax", Q::kQInt8, true), "ab"},
      {"minmax_symmetric_quint8", opts("minmax", Q::kQUInt8, true), "a"},
      {"minmax_reduce_range_qint8", opts("minmax", Q::kQInt8, false, false, true), "ab"},
      {"moving_average_affine_quint8", opts("moving_average", Q::kQUInt8, false), "abc"},
      {"per_channel_symmetric_qint8", opts("minmax", Q::kQInt8, true, true), "w"},
      {"per_channel_affine_quint8_reduce_range", opts("minmax", Q::kQUInt8, false, true, true), "w"},
      {"moving_average_per_channel_affine_qint8", opts("moving_average", Q::kQInt8, false, true), "ww"},
      {"histogram_affine_quint8", opts("histogram", Q::kQUInt8, false), "a"},
      {"histogram_symmetric_qint8", opts("histogram", Q::kQInt8, true), "a"},
      {"histogram_affine_quint8_same_range_batches", opts("histogram", Q::kQUInt8, false), "add"},
  };
  for (const auto& [name, o, order] : cases) {
    auto obs = q::make_observer(o);
    for (const char key : order) obs->forward(tensors.at(std::string(1, key)));
    const auto got = obs->qparams();
    ASSERT_TRUE(expected.count(name + ".scale")) << name;
    EXPECT_TRUE(torch::equal(got.scale, expected.at(name + ".scale")))
        << name << ": scale " << got.scale << " vs PyTorch " << expected.at(name + ".scale");
    EXPECT_TRUE(torch::equal(got.zero_point, expected.at(name + ".zero_point")))
        << name << ": zero point " << got.zero_point << " vs PyTorch " << expected.at(name + ".zero_point");
  }
}

TEST(Observers, PercentileClipsTheOutliersMinMaxKeeps) {
  torch::manual_seed(4);
  auto x = torch::randn({100000});
  x[0] = 40.0;  // one outlier
  auto minmax = q::make_observer(opts("minmax", q::QDtype::kQUInt8, false));
  auto pct = q::make_observer(opts("percentile", q::QDtype::kQUInt8, false).percentile(99.9));
  minmax->forward(x);
  pct->forward(x);
  const auto range = std::dynamic_pointer_cast<q::HistogramObserverImpl>(pct)->clipping_range();
  // 99.9 % of a standard normal lies within ±3.29.
  EXPECT_NEAR(range.second, 3.29, 0.15);
  EXPECT_NEAR(range.first, -3.29, 0.15);
  EXPECT_LT(pct->qparams().scale.item<float>() * 5, minmax->qparams().scale.item<float>());
}

TEST(Observers, HistogramObserverIsPerTensorOnly) {
  try {
    q::make_observer(opts("histogram", q::QDtype::kQUInt8, false, true));
    FAIL() << "a per-channel histogram observer was accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("per-tensor only"), std::string::npos) << e.what();
  }
}

TEST(QParams, ScalarReferenceAgreesWithAtenPerTensorAndPerChannel) {
  torch::manual_seed(5);
  const auto x = torch::randn({16, 9, 3, 3}) * 2;
  for (const bool per_channel : {false, true}) {
    auto obs = q::make_observer(opts("minmax", q::QDtype::kQInt8, true, per_channel), 16);
    obs->forward(x);
    const auto qp = obs->qparams();
    const auto ref = q::quantize_reference(x, qp);
    const auto fast = q::quantize_to_int(x, qp);
    const auto diff = (ref.to(torch::kInt) - fast.to(torch::kInt)).abs();
    EXPECT_LE(diff.max().item<int64_t>(), kMaxLevelDiff);
    EXPECT_LE(diff.gt(0).sum().item<double>() / diff.numel(), kMaxShareOffByOne);
    EXPECT_TRUE(torch::allclose(q::dequantize_reference(fast, qp), q::from_int(fast, qp).dequantize()));
  }
}

TEST(QParams, ZeroStaysExactlyZeroUnderSymmetricWeights) {
  auto w = torch::randn({8, 32});
  w.index_put_({torch::rand({8, 32}) < 0.6}, 0.0);
  auto obs = q::make_observer(opts("minmax", q::QDtype::kQInt8, true, true), 8);
  obs->forward(w);
  const auto i8 = q::quantize_to_int(w, obs->qparams());
  EXPECT_TRUE(torch::equal(i8.eq(0), w.eq(0) | i8.eq(0)));
  EXPECT_TRUE(torch::equal(w.eq(0), w.eq(0) & i8.eq(0)));
}

TEST(Int8Layers, StaticLinearApproximatesFloatLinear) {
  torch::manual_seed(6);
  torch::nn::Linear lin(64, 32);
  const auto x = torch::randn({16, 64});
  const auto y = lin->forward(x).detach();
  q::QuantizedLinear qlin(64, 32, true, q::Activations::kStatic, false);
  auto wobs = q::make_observer(opts("minmax", q::QDtype::kQInt8, true, true), 32);
  wobs->forward(lin->weight);
  qlin->set_weight(lin->weight, lin->bias, wobs->qparams());
  // 7-bit activations where the engine's sums may saturate, as shrink's default observers choose.
  const bool saturating = q::int8_sums_may_saturate(q::Backend::kOneDnn);
  auto in = q::make_observer(opts("minmax", q::QDtype::kQUInt8, false, false, saturating));
  auto out = q::make_observer(opts("minmax", q::QDtype::kQUInt8, false, false, saturating));
  in->forward(x);
  out->forward(y);
  qlin->set_input(in->qparams());
  qlin->set_output(out->qparams());
  const auto yq = qlin->forward(x);
  ASSERT_TRUE(yq.is_quantized());
  EXPECT_LT(relative_error(yq.dequantize(), y), kMaxInt8RelativeError);
}

TEST(Int8Layers, AFloatInputIsQuantizedAsAtenQuantizesIt) {
  torch::manual_seed(8);
  const auto w = torch::randn({8, 3, 3, 3}) * 0.1, b = torch::randn({8});
  auto wobs = q::make_observer(opts("minmax", q::QDtype::kQInt8, true, true), 8);
  wobs->forward(w);
  const double scale = 0.03125;  // exact in float, as the layer stores it
  const int64_t zero_point = 40;
  // A quarter of a level off every level (NCHW, three channels: the own kernel reorders them to
  // channels-last), so that any correct rounding agrees.
  const auto x = ((torch::randint(0, 128, {2, 3, 9, 9}) - zero_point).to(torch::kFloat) + 0.25) * scale;
  const auto xq = torch::quantize_per_tensor(x, scale, zero_point, torch::kQUInt8);
  for (const auto kernels : {runtime::Int8Kernels::kShrink, runtime::Int8Kernels::kLibTorch}) {
    SCOPED_TRACE(core::name_of(kernels));
    q::QuantizedConv2d conv(q::Conv2dGeometry{3, 8, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, true, true);
    conv->set_kernels(kernels);
    conv->set_weight(w, b, wobs->qparams());
    runtime::QParams in, out;
    in.scale = torch::tensor(scale);
    in.zero_point = torch::tensor(zero_point);
    out.scale = torch::tensor(0.0625);
    out.zero_point = torch::tensor(int64_t{0});
    conv->set_input(in);
    conv->set_output(out);
    EXPECT_TRUE(torch::equal(conv->forward(x).int_repr(), conv->forward(xq).int_repr()));
  }
}

TEST(Int8Layers, AChangedWeightIsRepackedBeforeTheNextCall) {
  torch::manual_seed(7);
  q::QuantizedLinear qlin(8, 4, false, q::Activations::kDynamic, false);
  auto w = torch::randn({4, 8});
  auto obs = q::make_observer(opts("minmax", q::QDtype::kQInt8, true));
  obs->forward(w);
  qlin->set_weight(w, torch::zeros({4}), obs->qparams());
  const auto x = torch::randn({2, 8});
  const auto first = qlin->forward(x);
  qlin->set_weight(-w, torch::zeros({4}), obs->qparams());
  EXPECT_TRUE(torch::allclose(qlin->forward(x), -first, 1e-2, 1e-2));
}

TEST(PostTrainingQuantization, MlpStaticTurnsEveryLinearInt8AndStaysCloseToFloat) {
  auto c = quantized("mlp", "{hidden: [32, 16], batch_norm: true, dropout: 0.0}");
  EXPECT_EQ(c.summary.int8_layers.size(), 3u) << c.summary.to_json().dump();
  EXPECT_TRUE(c.summary.float_layers.empty()) << c.summary.to_json().dump();
  EXPECT_EQ(q::int8_weight_count(*c.model.module), 144 * 32 + 32 * 16 + 16 * 4);
  torch::NoGradGuard no_grad;
  const auto y = c.model.forward(c.probe);
  EXPECT_FALSE(y.is_quantized());
  EXPECT_LT(relative_error(y, c.float_logits), kMaxInt8RelativeError);
}

TEST(PostTrainingQuantization, ConvNetWithBatchNormFusesAndStaysCloseToFloat) {
  auto c = quantized("convnet", "{channels: [4, 8], kernel_size: 3, fc: [16], batch_norm: true, dropout: 0.0}");
  EXPECT_EQ(c.summary.int8_layers.size(), 4u) << c.summary.to_json().dump();
  EXPECT_TRUE(c.model.module->named_parameters().is_empty()) << "BatchNorm should be folded away";
  torch::NoGradGuard no_grad;
  EXPECT_LT(relative_error(c.model.forward(c.probe), c.float_logits), kMaxInt8RelativeError);
}

TEST(PostTrainingQuantization, ResNetQuantizesItsResidualAddsAndShortcuts) {
  auto c = quantized("resnet", "{widths: [4, 8], blocks: 1}");
  // stem, 2 body convs × 2 blocks, 1 projection shortcut, the Linear, and 2 adds
  EXPECT_EQ(c.summary.int8_layers.size(), 9u) << c.summary.to_json().dump();
  torch::NoGradGuard no_grad;
  EXPECT_LT(relative_error(c.model.forward(c.probe), c.float_logits), 2 * kMaxInt8RelativeError);
}

TEST(PostTrainingQuantization, DynamicQuantizesLinearWeightsOnly) {
  auto c = quantized("convnet", "{channels: [4], kernel_size: 3, fc: [16], batch_norm: false, dropout: 0.0}",
                     q::QuantizeOptions().method(shrink::compress::quantize::QuantizeMethod::kDynamic));
  EXPECT_EQ(c.summary.int8_layers.size(), 2u) << c.summary.to_json().dump();
  ASSERT_EQ(c.summary.float_layers.size(), 1u) << c.summary.to_json().dump();
  EXPECT_EQ(c.summary.float_layers[0].layer, "features.0");
  torch::NoGradGuard no_grad;
  EXPECT_LT(relative_error(c.model.forward(c.probe), c.float_logits), kMaxInt8RelativeError);
}

TEST(PostTrainingQuantization, ExcludedLayersStayFloatAndAreNamed) {
  auto c = quantized("mlp", "{hidden: [32], batch_norm: false, dropout: 0.0}",
                     q::QuantizeOptions().exclude({"^classifier\\.2$"}));
  ASSERT_EQ(c.summary.float_layers.size(), 1u) << c.summary.to_json().dump();
  EXPECT_EQ(c.summary.float_layers[0].layer, "classifier.2");
  EXPECT_EQ(c.summary.float_layers[0].reason, "excluded by the recipe (exclude)");
  torch::NoGradGuard no_grad;
  EXPECT_LT(relative_error(c.model.forward(c.probe), c.float_logits), kMaxInt8RelativeError);
}

TEST(PostTrainingQuantization, ConvertBeforeCalibrationSaysSo) {
  torch::manual_seed(3);
  auto model = models::build(blueprint_of("mlp", "{hidden: [8]}", {1, 4, 4}));
  q::PostTrainingQuantizer quantizer(model, {});
  quantizer.prepare();
  try {
    quantizer.convert(model);
    FAIL() << "converted with no calibration";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("saw no calibration data"), std::string::npos) << e.what();
  }
}

TEST(PostTrainingQuantization, OnednnRefusesAsymmetricWeights) {
  try {
    q::validate(q::QuantizeOptions()
                    .backend(shrink::compress::quantize::BackendChoice::kOneDnn)
                    .weights(opts("minmax", q::QDtype::kQInt8, false)));
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("symmetric weights only"), std::string::npos) << e.what();
  }
}

class Int8Format : public ::testing::TestWithParam<std::string> {};

TEST_P(Int8Format, AnInt8FileRestoresToTheSameOutputsWithNoRecipe) {
  auto c = quantized("resnet", "{widths: [4, 8], blocks: 1}");
  const auto dir = scratch_dir("int8_format_" + GetParam());
  const auto file = dir / ("m." + GetParam());
  io::save_module(file, *c.model.module, c.blueprint.to_json());
  const auto r = models::restore_model(file);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(r.model.forward(c.probe), c.model.forward(c.probe)));
  // int8 on disk, not float
  bool has_int8 = false;
  for (const auto& e : io::load_state_dict_file(file)) has_int8 = has_int8 || e.tensor.scalar_type() == torch::kChar;
  EXPECT_TRUE(has_int8);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, Int8Format, ::testing::Values("pt", "pth", "h5"));

TEST(Int8Files, APrunedInt8WeightIsStoredSparseAndKeepsItsZeros) {
  torch::manual_seed(8);
  auto blueprint = blueprint_of("mlp", "{hidden: [256], batch_norm: false, dropout: 0.0}", {1, 16, 16});
  auto model = models::build(blueprint);
  compress::prune::L1Pruner pruner(model.module, compress::prune::PruneOptions().sparsity(0.9));
  pruner.prune_to_fraction_of_target(1.0);
  for (const auto& t : pruner.transforms()) blueprint.transforms.push_back(t);
  model.module->eval();
  const auto pruned_zeros = model.module->named_parameters()["classifier.0.weight"].eq(0);
  const auto data = data::Dataset{torch::randn({128, 1, 16, 16}), torch::randint(0, 4, {128}), {}};
  q::PostTrainingQuantizer quantizer(model, {});
  quantizer.prepare();
  quantizer.calibrate(data, 2, 64);
  blueprint.transforms.push_back(quantizer.convert(model));
  const auto dir = scratch_dir("int8_sparse");
  io::save_module(dir / "m.h5", *model.module, blueprint.to_json());
  const auto stored = io::read_stored_file(dir / "m.h5");
  bool sparse_int8 = false;
  for (const auto& e : stored.entries) {
    sparse_int8 = sparse_int8 || (e.data.dtype == torch::kChar && e.data.encoding != io::Encoding::kDense);
  }
  EXPECT_TRUE(sparse_int8);
  const auto r = models::restore_model(dir / "m.h5");
  const auto w = r.model.module->named_buffers()["classifier.0.weight"];
  EXPECT_EQ(w.scalar_type(), torch::kChar);
  EXPECT_TRUE(w.masked_select(pruned_zeros).eq(0).all().item<bool>()) << "a pruned weight became nonzero";
}

namespace {

// docs/python/shrink_models.simulate_int8 is the reference of shrink's int8 kernels: the same
// integers, sums and rounding in float64. The kernels (oneDNN's, per CPU path; shrink's GEMV) sum
// exactly but requantize in float32 with their own order of the scale products, so an output
// that falls within a float32 ulp of a rounding boundary can land one step away, and the step
// travels on through the next layers. On models trained past the ties that moves few predictions.
constexpr double kMinSimulatedAgreement = 0.99;  // top-1 predictions shared with the simulation
constexpr double kMaxSimulatedAccuracyGap = 0.005;
// The dequantized float model keeps activations float: it differs from int8 by the activation
// rounding itself, which is several steps at the logits, so only the accuracy is compared.
constexpr double kMaxDequantizedAccuracyGap = 0.02;

void check_int8_in_python(const std::string& arch, const std::string& options, double noise) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("int8_reference_" + arch);
  const auto all =
      data::make_synthetic(data::SyntheticOptions().samples(3000).classes(4).shape({1, 12, 12}).noise(noise).seed(7));
  const auto train_set = all.head(2000);
  const auto probe = all.select(torch::arange(2000, 3000));
  torch::manual_seed(9);
  auto blueprint = blueprint_of(arch, options, {1, 12, 12});
  auto model = models::build(blueprint);
  train::Trainer trainer(model.module, model.forward,
                         train::TrainerOptions().epochs(3).batch_size(64).seed(2).progress(false).optimizer(
                             train::OptimizerOptions().name(train::OptimizerKind::kSgd).lr(0.02).momentum(0.9)));
  trainer.fit(train_set);
  model.module->eval();
  q::PostTrainingQuantizer quantizer(model, {});
  quantizer.prepare();
  quantizer.calibrate(train_set, 8, 64);
  blueprint.transforms.push_back(quantizer.convert(model));
  torch::NoGradGuard no_grad;
  const auto logits = model.forward(probe.inputs);
  const double accuracy = logits.argmax(1).eq(probe.targets).to(torch::kDouble).mean().item<double>();
  io::save_module(dir / "m.pth", *model.module, blueprint.to_json());
  io::write_pth(dir / "probe.pth", {{"inputs", probe.inputs, false}, {"targets", probe.targets, false}});
  const auto r =
      run_command("/usr/bin/python3 " + tests_dir() + "/python/int8_reference.py " + (dir / "m.pth").string() + " " +
                  (dir / "probe.pth").string() + " " + (dir / "out.pth").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : io::read_pth(dir / "out.pth")) out[e.name] = e.tensor;
  const auto simulated = out.at("simulated");
  const double agreement = simulated.argmax(1).eq(logits.argmax(1)).to(torch::kDouble).mean().item<double>();
  const double max_diff = (simulated - logits).abs().max().item<double>();
  const auto figures = core::cat(
      arch, ": int8 accuracy ", accuracy, ", simulated ", out.at("simulated_accuracy").item<double>(), ", dequantized ",
      out.at("dequantized_accuracy").item<double>(), ", top-1 agreement ", agreement, ", max |logit diff| ", max_diff);
  std::cout << figures << "\n";
  SCOPED_TRACE(figures + "\n" + r.output);
  EXPECT_GE(agreement, kMinSimulatedAgreement);
  EXPECT_NEAR(out.at("simulated_accuracy").item<double>(), accuracy, kMaxSimulatedAccuracyGap);
  EXPECT_NEAR(out.at("dequantized_accuracy").item<double>(), accuracy, kMaxDequantizedAccuracyGap);
  // Trained past the ties, yet not perfect, so that a wrong rounding could show.
  EXPECT_GT(accuracy, 0.8);
  EXPECT_LT(accuracy, 0.99);
}

}  // namespace

TEST(PythonInt8Reference, ConvNetMatchesItsSimulationInPyTorch) {
  check_int8_in_python("convnet", "{channels: [8, 16], kernel_size: 3, fc: [32], batch_norm: true, dropout: 0.0}", 2.5);
}

TEST(PythonInt8Reference, ResNetMatchesItsSimulationInPyTorch) {
  check_int8_in_python("resnet", "{widths: [8, 16], blocks: 1}", 2.0);
}

TEST(PythonInt8Reference, MlpWithBatchNormMatchesItsSimulationInPyTorch) {
  check_int8_in_python("mlp", "{hidden: [64, 32], batch_norm: true, dropout: 0.0}", 3.5);
}

TEST(Int8Linear, BatchOneThroughShrinksKernelsMatchesLibTorchsWithinOneLevel) {
  if (q::int8_sums_may_saturate(q::Backend::kOneDnn)) {
    GTEST_SKIP() << "oneDNN's int8 sums saturate on this CPU path (no VNNI), so LibTorch's kernel is no reference "
                    "here; Int8Kernels.RowsOnTheConvolutionsTilesEqualTheGemvReferenceOnEveryPath checks shrink's "
                    "kernels on every path";
  }
  torch::manual_seed(13);
  torch::nn::Linear lin(784, 300);
  const auto x = torch::randn({1, 784});
  q::QuantizedLinear ours(784, 300, true, q::Activations::kStatic, true);
  q::QuantizedLinear theirs(784, 300, true, q::Activations::kStatic, true);
  theirs->set_kernels(runtime::Int8Kernels::kLibTorch);
  auto wobs = q::make_observer(opts("minmax", q::QDtype::kQInt8, true, true), 300);
  wobs->forward(lin->weight);
  auto in = q::make_observer(opts("minmax", q::QDtype::kQUInt8, false));
  auto out = q::make_observer(opts("minmax", q::QDtype::kQUInt8, false));
  in->forward(x);
  out->forward(torch::relu(lin->forward(x)));
  for (auto* layer : {ours.get(), theirs.get()}) {
    layer->set_weight(lin->weight, lin->bias, wobs->qparams());
    layer->set_input(in->qparams());
    layer->set_output(out->qparams());
  }
  const auto a = ours->forward(x).int_repr().to(torch::kInt), b = theirs->forward(x).int_repr().to(torch::kInt);
  EXPECT_LE((a - b).abs().max().item<int64_t>(), kMaxLevelDiff);
  // Quantized input (the next layer's case) takes the same path.
  const auto qx = torch::quantize_per_tensor(x, 0.02, 128, torch::kQUInt8);
  const auto c = ours->forward(qx).int_repr().to(torch::kInt), d = theirs->forward(qx).int_repr().to(torch::kInt);
  EXPECT_LE((c - d).abs().max().item<int64_t>(), kMaxLevelDiff);
}

TEST(Int8Gemv, TheFloatReferenceIsTheFormulaOnExactIntegerSums) {
  torch::manual_seed(14);
  for (const int64_t cols : {784, 300, 17}) {
    auto w = random_gemv_weights(103, cols);
    const auto values = torch::from_blob(w.values.data(), {w.rows, cols}, torch::kChar);
    const auto x = torch::randint(0, 256, {cols}).to(torch::kByte);
    runtime::Int8GemvParams p;
    p.in_scale = 0.013f;
    p.in_zero_point = 91;
    p.relu = cols == 300;
    std::vector<float> ref(static_cast<size_t>(w.rows));
    runtime::int8_gemv_float_reference(w, x.data_ptr<uint8_t>(), p, ref.data());
    // The reference is the plain formula, in float, on exact integer sums.
    const auto exact = (x.to(torch::kInt) - p.in_zero_point).matmul(values.to(torch::kInt).t()).to(torch::kDouble);
    for (int64_t r = 0; r < w.rows; ++r) {
      double y =
          exact[r].item<double>() * p.in_scale * w.scales[static_cast<size_t>(r)] + w.bias[static_cast<size_t>(r)];
      if (p.relu) y = std::max(y, 0.0);
      EXPECT_NEAR(ref[static_cast<size_t>(r)], y, 1e-5 * std::max(1.0, std::abs(y))) << "row " << r;
    }
  }
}

TEST(Int8Gemv, DynamicInputQParamsAreLibTorchsChoiceWithAndWithoutReduceRange) {
  const std::vector<std::pair<float, float>> ranges = {
      {-1.0f, 1.0f},  {0.0f, 0.0f},   {0.0f, 3.7f},   {-2.5f, 0.0f},   {-1e-6f, 2e-6f}, {0.1f, 0.2f},
      {-0.2f, -0.1f}, {-3.0f, 1e-3f}, {-1e-3f, 5.0f}, {-1e30f, 1e30f}, {-7.3f, 0.021f}, {1e-9f, 1e-8f}};
  for (const bool reduce_range : {false, true}) {
    for (const auto& [lo, hi] : ranges) {
      float scale = 0;
      int32_t zero_point = -1;
      runtime::dynamic_input_qparams(lo, hi, reduce_range, &scale, &zero_point);
      // LibTorch's own choice for a tensor spanning [lo, hi] (quantize_per_tensor_dynamic shares it).
      const auto theirs = at::quantize_per_tensor_dynamic(torch::tensor({lo, hi}), at::kQUInt8, reduce_range);
      const auto where = core::cat("[", lo, ", ", hi, "], reduce_range ", reduce_range);
      EXPECT_EQ(scale, static_cast<float>(theirs.q_scale())) << where;
      EXPECT_EQ(zero_point, theirs.q_zero_point()) << where;
    }
  }
}

TEST(Int8Linear, DynamicBatchOneThroughShrinksKernelsMatchesLibTorchsKernel) {
  if (runtime::int8_conv2d_best_path() == runtime::Int8Path::kReference)
    GTEST_SKIP() << "no AVX2 on this CPU: the layer runs on LibTorch's kernel";
  // Both quantize the row with the same parameters (7-bit where the engine's sums may saturate, so
  // that they do not) and sum exactly in int32: only the float
  // rounding of the rescale differs (measured: at most 1.9e-6 on these logits), far below one
  // input level, which an input quantized differently would cost.
  constexpr double kTolerance = 1e-5;
  torch::manual_seed(15);
  torch::nn::Linear lin(784, 300);
  auto wobs = q::make_observer(opts("minmax", q::QDtype::kQInt8, true, true), 300);
  wobs->forward(lin->weight);
  for (const bool relu : {false, true}) {
    q::QuantizedLinear ours(784, 300, true, q::Activations::kDynamic, relu);
    q::QuantizedLinear theirs(784, 300, true, q::Activations::kDynamic, relu);
    theirs->set_kernels(runtime::Int8Kernels::kLibTorch);
    for (auto* layer : {ours.get(), theirs.get()}) layer->set_weight(lin->weight, lin->bias, wobs->qparams());
    for (int trial = 0; trial < 8; ++trial) {
      const auto x = torch::randn({1, 784}) * (trial + 1) + (trial % 3) * 0.5;
      const auto a = ours->forward(x), b = theirs->forward(x);
      const double scale = std::max(1.0, b.abs().max().item<double>());
      EXPECT_LE((a - b).abs().max().item<double>(), kTolerance * scale) << "relu " << relu << ", trial " << trial;
    }
  }
}

// LibTorch 2.15's oneDNN int8 Linear is its reference kernel (64 x 784 -> 300 took 2 s, against
// 0.17 ms on the x86 engine), so onednn's scheme runs on the x86 engine wherever the build has one.
TEST(Int8Engine, OnednnsSchemeRunsOnTheX86EngineWhereLibTorchHasIt) {
  const auto& engines = at::globalContext().supportedQEngines();
  const bool has_x86 = std::find(engines.begin(), engines.end(), at::QEngine::X86) != engines.end();
  const bool has_onednn = std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) != engines.end();
  if (!has_x86 && !has_onednn) GTEST_SKIP() << "this LibTorch has neither the x86 nor the oneDNN int8 engine";
  q::use_backend(q::Backend::kOneDnn);
  EXPECT_EQ(at::globalContext().qEngine(), has_x86 ? at::QEngine::X86 : at::QEngine::ONEDNN);
  EXPECT_EQ(q::engine_name(q::Backend::kOneDnn), has_x86 ? "x86" : "onednn");
}

TEST(Int8Files, AWeightZeroPointOtherThanZeroIsRefusedNamingTheTensor) {
  auto c = quantized("mlp", "{hidden: [16], batch_norm: false, dropout: 0.0}");
  const auto dir = scratch_dir("int8_asymmetric_weight");
  auto sd = io::state_dict(*c.model.module);
  for (auto& e : sd) {
    if (e.name == "classifier.0.weight_zero_point") e.tensor = torch::full_like(e.tensor, 3);
  }
  io::save_state_dict(dir / "m.pt", sd, c.blueprint.to_json());
  try {
    models::restore_model(dir / "m.pt");
    FAIL() << "an asymmetric int8 weight was accepted";
  } catch (const core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "'classifier.0.weight_zero_point' holds weight zero points other than 0 (up to 3)"))
        << e.what();
    EXPECT_TRUE(contains(e.what(), "take symmetric weights")) << e.what();
  }
}

TEST(Int8Files, ACorruptScaleOrZeroPointIsDetectedAndNamed) {
  auto c = quantized("mlp", "{hidden: [16], batch_norm: false, dropout: 0.0}");
  const auto dir = scratch_dir("int8_corrupt");
  auto sd = io::state_dict(*c.model.module);
  for (auto& e : sd) {
    if (e.name == "classifier.0.weight_scale") e.tensor = torch::zeros_like(e.tensor);
  }
  io::save_state_dict(dir / "m.pt", sd, c.blueprint.to_json());
  try {
    models::restore_model(dir / "m.pt");
    FAIL() << "a zero scale was accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'classifier.0.weight_scale' holds a scale that is not positive and finite"),
              std::string::npos)
        << e.what();
  }
  for (auto& e : sd) {
    if (e.name == "classifier.0.weight_scale") e.tensor = torch::full_like(e.tensor, 0.01);
    if (e.name == "classifier.2.zero_point") e.tensor = torch::full_like(e.tensor, 300);
  }
  io::save_state_dict(dir / "m.pt", sd, c.blueprint.to_json());
  try {
    models::restore_model(dir / "m.pt");
    FAIL() << "a zero point of 300 was accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'classifier.2.zero_point' holds a zero point outside [0, 255]"),
              std::string::npos)
        << e.what();
  }
}
