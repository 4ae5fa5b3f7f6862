// TorchScript models: a scripted or traced module trained, pruned and distilled as a shrink model,
// handed back as a state_dict and as TorchScript, and loaded only when asked to.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>

#include "compress/quantize/quantizer.h"
#include "core/error.h"
#include "helpers.h"
#include "models/restore.h"
#include "models/torchscript.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace shrink;
using namespace shrink::testing;

namespace {

// A TorchScript module written from C++ (no Python needed): flatten, then a Linear held by a
// submodule `fc`, for 1x8x8 samples and `classes` outputs.
void save_scripted_linear(const fs::path& file, int64_t classes = 4, double scale = 0.1) {
  torch::manual_seed(6);
  torch::jit::Module fc("Fc");
  fc.register_parameter("weight", (torch::randn({classes, 64}) * scale).requires_grad_(), false);
  fc.register_parameter("bias", torch::zeros({classes}).requires_grad_(), false);
  fc.define("def forward(self, x):\n    return torch.matmul(x, self.weight.t()) + self.bias\n");
  torch::jit::Module net("Net");
  net.register_module("fc", fc);
  net.define("def forward(self, x):\n    return self.fc.forward(torch.flatten(x, 1))\n");
  net.save(file.string());
}

// A TorchScript MLP written from C++: flatten, fc1 (64 -> 32) and relu, fc2 (32 -> 4), each Linear a
// submodule calling torch.linear on its own weight and bias, as nn.Linear's scripted forward does.
void save_scripted_mlp(const fs::path& file) {
  torch::manual_seed(6);
  const auto linear = [](const std::string& type, int64_t in, int64_t out) {
    torch::jit::Module m(type);
    m.register_parameter("weight", (torch::randn({out, in}) / std::sqrt(static_cast<double>(in))).requires_grad_(),
                         false);
    m.register_parameter("bias", (torch::randn({out}) * 0.1).requires_grad_(), false);
    m.define("def forward(self, x):\n    return torch.linear(x, self.weight, self.bias)\n");
    return m;
  };
  torch::jit::Module net("Net");
  net.register_module("fc1", linear("Fc1", 64, 32));
  net.register_module("fc2", linear("Fc2", 32, 4));
  net.define("def forward(self, x):\n    return self.fc2.forward(torch.relu(self.fc1.forward(torch.flatten(x, 1))))\n");
  net.save(file.string());
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The synthetic recipe with its model a TorchScript file and `stages`.
std::string torchscript_recipe(const std::string& stages) {
  auto text = synthetic_recipe(1);
  text.replace(text.find("    arch: mlp\n    hidden: [32, 16]\n"), 35, "    arch: torchscript\n    file: net.ts\n");
  return text.substr(0, text.find("stages:\n")) + "stages:\n" + stages +
         "report:\n  latency_batch_sizes: [1]\n  warmup: 1\n  iterations: 3\n";
}

const std::string kPrune =
    "  - prune:\n"
    "      model: small\n"
    "      method: l1\n"
    "      sparsity: 0.5\n"
    "      finetune: {epochs: 1, batch_size: 32, optimizer: {name: sgd, lr: 0.05}}\n";

// Runs `recipe` (a TorchScript model over byom.py's IDX data in `dir`) and checks what comes
// back in the PyTorch of `python`: the .pth in the Python class at the reported accuracy, the
// TorchScript file with shrink's logits. Returns the report.
json run_and_check_in_pytorch(const fs::path& dir, const std::string& recipe, const std::string& model,
                              const std::string& python = "/usr/bin/python3") {
  write_file(dir / "recipe.yaml", recipe);
  const auto run =
      run_shrink("run --no-progress --out " + (dir / "run").string() + " " + (dir / "recipe.yaml").string());
  EXPECT_EQ(run.exit_code, 0) << run.output;
  const auto report = read_json(dir / "run" / "report.json");
  json last;
  for (const auto& s : report["stages"]) {
    if (s["model"] == model) last = s;
  }
  const auto artifacts = last.at("artifacts");
  const auto back = run_command(python + " -W ignore " + tests_dir() + "/python/byom.py eval_net " + dir.string() +
                                " " + (dir / "run" / artifacts["pth"].get<std::string>()).string() + " 2>&1");
  EXPECT_EQ(back.exit_code, 0) << back.output;
  EXPECT_NEAR(last_json_line(back.output)["accuracy"].get<double>(), last["metrics"]["accuracy"].get<double>(), 0.001);
  std::printf("%s: accuracy %.4f reported by shrink, %.4f in %s's PyTorch\n",
              artifacts["pth"].get<std::string>().c_str(), last["metrics"]["accuracy"].get<double>(),
              last_json_line(back.output)["accuracy"].get<double>(), python.c_str());

  write_probe(dir / "run" / artifacts["pt"].get<std::string>(), dir / "probe.pth");
  const auto logits = run_command(python + " -W ignore " + tests_dir() + "/python/byom.py logits " +
                                  (dir / "run" / artifacts["torchscript"].get<std::string>()).string() + " " +
                                  (dir / "probe.pth").string() + " 2>&1");
  EXPECT_EQ(logits.exit_code, 0) << logits.output;
  EXPECT_LE(last_json_line(logits.output)["max_abs_diff"].get<double>(), 1e-4) << logits.output;
  return report;
}

// byom.py's IDX data in `dir` and its Net trained on it in the PyTorch of `python`, saved by
// torch.jit.`how` there.
bool make_pytorch_net(const fs::path& dir, const std::string& how, const std::string& python = "/usr/bin/python3") {
  const auto made =
      run_command("/usr/bin/python3 " + tests_dir() + "/python/byom.py make " + dir.string() + " '' && " + python +
                  " -W ignore " + tests_dir() + "/python/byom.py script " + dir.string() + " " + how + " 2>&1");
  EXPECT_EQ(made.exit_code, 0) << made.output;
  return made.exit_code == 0;
}

// The reached sparsity over the pruned tensors (the report's per-layer figures).
double pruned_sparsity(const json& stage) {
  double numel = 0, nonzero = 0;
  for (const auto& l : stage["layers"]) {
    numel += l["numel"].get<double>();
    nonzero += l["nonzero"].get<double>();
  }
  return 1 - nonzero / numel;
}

const std::string kIdxData =
    "data:\n"
    "  format: idx\n"
    "  train: {images: train-images.idx, labels: train-labels.idx}\n"
    "  test: {images: test-images.idx, labels: test-labels.idx}\n"
    "  classes: [a, b, c, d]\n"
    "  val_split: 0.1\n";

const std::string kPrune80 =
    "  - prune:\n"
    "      model: net\n"
    "      method: l1\n"
    "      scope: global\n"
    "      sparsity: 0.8\n"
    "      schedule: {kind: agp, start_epoch: 0, end_epoch: 2}\n"
    "      finetune: {epochs: 4, batch_size: 32, optimizer: {name: sgd, lr: 0.02, momentum: 0.9}}\n";

}  // namespace

TEST(TorchScriptModel, ItsParametersAreTheScriptedModulesOwnTensorsUnderTheirNames) {
  const auto dir = scratch_dir("ts_shared");
  save_scripted_linear(dir / "net.ts");
  models::allow_torchscript(true);
  auto model = models::from_torchscript(dir / "net.ts");
  auto* scripted = models::as_torchscript(model);
  ASSERT_NE(scripted, nullptr);
  const auto params = model.module->named_parameters();
  ASSERT_TRUE(params.contains("fc.weight"));
  ASSERT_TRUE(params.contains("fc.bias"));
  torch::optim::SGD sgd(model.module->parameters(), torch::optim::SGDOptions(0.5));
  const auto x = torch::rand({3, 1, 8, 8});
  model.forward(x).pow(2).sum().backward();
  sgd.step();
  // The step the optimizer took on shrink's view is in the TorchScript module that runs.
  const auto jit_weight = scripted->scripted().attr("fc").toModule().attr("weight").toTensor();
  EXPECT_TRUE(torch::equal(jit_weight, params["fc.weight"]));
  EXPECT_TRUE(
      torch::allclose(model.forward(x), torch::flatten(x, 1).matmul(params["fc.weight"].t()) + params["fc.bias"]));
}

TEST(TorchScriptModel, ReluThenA2x2PoolRunsAsTheFusedKernelAndIsSavedAsBrought) {
  const auto dir = scratch_dir("ts_fused");
  torch::manual_seed(9);
  torch::jit::Module net("Net");
  net.register_parameter("weight", (torch::randn({4, 1, 3, 3}) * 0.3).requires_grad_(), false);
  net.define(
      "def forward(self, x):\n"
      "    y = torch.max_pool2d(torch.relu(torch.conv2d(x, self.weight, None, [1, 1], [1, 1])), [2, 2])\n"
      "    return torch.max_pool2d(torch.relu(y), [3, 3])\n");
  net.save((dir / "net.ts").string());
  models::allow_torchscript(true);
  auto model = models::from_torchscript(dir / "net.ts");
  auto* scripted = models::as_torchscript(model);
  const auto graph = scripted->scripted().get_method("forward").graph()->toString();
  EXPECT_TRUE(contains(graph, "shrink::relu_max_pool2x2")) << graph;
  EXPECT_TRUE(contains(graph, "aten::max_pool2d")) << graph;  // the 3x3 pool is not the kernel's

  auto brought = torch::jit::load((dir / "net.ts").string());
  const auto x = torch::randn({2, 1, 12, 12}, torch::requires_grad());
  const auto fused = model.forward(x);
  const auto plain = brought.forward({x}).toTensor();
  EXPECT_TRUE(torch::equal(fused, plain));
  const auto g_fused = torch::autograd::grad({fused.sum()}, {x})[0];
  const auto g_plain = torch::autograd::grad({plain.sum()}, {x})[0];
  EXPECT_TRUE(torch::equal(g_fused, g_plain));

  scripted->save(dir / "back.ts");
  auto back = torch::jit::load((dir / "back.ts").string());
  EXPECT_FALSE(contains(back.get_method("forward").graph()->toString(), "shrink::")) << "PyTorch could not run it";
}

TEST(TorchScriptModel, PyTorchsScriptedAndTracedConvBlocksRunFused) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("ts_fused_python");
  models::allow_torchscript(true);
  for (const std::string how : {"script", "trace"}) {
    const auto file = dir / (how + ".ts");
    const auto made = run_command("/usr/bin/python3 " + tests_dir() + "/python/byom.py convnet " + file.string() + " " +
                                  how + " 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    auto model = models::from_torchscript(file);
    const auto graph = models::as_torchscript(model)->scripted().get_method("forward").graph()->toString();
    size_t fused = 0;
    for (auto at = graph.find("shrink::relu_max_pool2x2"); at != std::string::npos;
         at = graph.find("shrink::relu_max_pool2x2", at + 1))
      ++fused;
    EXPECT_EQ(fused, 2u) << how << ": " << graph;
    const auto x = torch::randn({3, 1, 8, 8});
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(model.forward(x), torch::jit::load(file.string()).forward({x}).toTensor())) << how;
  }
}

TEST(TorchScriptModel, LoadingOneWithoutConsentIsAUsageErrorThatSaysItIsCode) {
  const auto dir = scratch_dir("ts_consent");
  save_scripted_linear(dir / "net.ts");
  models::allow_torchscript(false);
  try {
    models::from_torchscript(dir / "net.ts");
    FAIL() << "loaded TorchScript without consent";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "the model is TorchScript, which is code")) << e.what();
  }
}

TEST(TorchScriptModel, AFileShrinkSavedFromOneEvaluatesOnlyWithTheTorchScriptFlag) {
  const auto recipe = write_recipe("ts_flag", torchscript_recipe(kPrune));
  save_scripted_linear(recipe.parent_path() / "net.ts");
  const auto out = recipe.parent_path() / "run";
  const auto run = run_shrink("run --no-progress --out " + out.string() + " " + recipe.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto refused = run_shrink("eval --no-progress " + (out / "stage-0-prune" / "small.pt").string());
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_TRUE(contains(refused.output, "which is code")) << refused.output;
  const auto evaluated =
      run_shrink("eval --no-progress --torchscript " + (out / "stage-0-prune" / "small.pt").string());
  EXPECT_EQ(evaluated.exit_code, 0) << evaluated.output;
  EXPECT_TRUE(fs::exists(out / "stage-0-prune" / "small.torchscript.pt"));
}

TEST(TorchScriptModel, AScriptedFileChangedSinceTheRunIsRefused) {
  const auto recipe = write_recipe("ts_changed", torchscript_recipe(kPrune));
  save_scripted_linear(recipe.parent_path() / "net.ts");
  const auto out = recipe.parent_path() / "run";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + recipe.string()).exit_code, 0);
  save_scripted_linear(recipe.parent_path() / "net.ts", 4, 0.2);
  const auto r = run_shrink("eval --no-progress --torchscript " + (out / "stage-0-prune" / "small.pt").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "the TorchScript file changed since the model was declared")) << r.output;
}

TEST(TorchScriptModel, StaticInt8OfOneIsARecipeErrorNamingWhatItSupports) {
  const auto recipe = write_recipe("ts_quantize", torchscript_recipe("  - quantize:\n      model: small\n"));
  save_scripted_mlp(recipe.parent_path() / "net.ts");
  const auto r = run_shrink("validate " + recipe.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "stages.0.quantize")) << r.output;
  EXPECT_TRUE(contains(r.output, "static int8 and QAT need layers held in LayerStacks")) << r.output;
}

TEST(TorchScriptModel, DynamicInt8OfOneWithoutLinearCallsIsARecipeErrorSayingSo) {
  const auto recipe = write_recipe(
      "ts_quantize_matmul", torchscript_recipe("  - quantize:\n      model: small\n      method: ptq_dynamic\n"));
  save_scripted_linear(recipe.parent_path() / "net.ts");  // torch.matmul, no aten::linear
  const auto r = run_shrink("validate " + recipe.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "its forward has no aten::linear call dynamic int8 can convert")) << r.output;
}

TEST(TorchScriptInt8, EachLinearCallRunsOnInt8WeightsQuantizedPerChannelAsTheZoosAre) {
  const auto dir = scratch_dir("ts_int8_layers");
  save_scripted_mlp(dir / "net.ts");
  models::allow_torchscript(true);
  auto model = models::from_torchscript(dir / "net.ts");
  model.module->eval();
  const auto floats = model.module->named_parameters();
  const auto w1 = floats["fc1.weight"].detach().clone(), b1 = floats["fc1.bias"].detach().clone();
  const auto w2 = floats["fc2.weight"].detach().clone(), b2 = floats["fc2.bias"].detach().clone();

  namespace qz = compress::quantize;
  qz::PostTrainingQuantizer quantizer(model, qz::QuantizeOptions().method(qz::QuantizeMethod::kDynamic));
  quantizer.prepare();
  const auto transform = quantizer.convert(model);
  EXPECT_EQ(transform.kind, "torchscript_int8");
  EXPECT_EQ(quantizer.summary().int8_layers, (std::vector<std::string>{"fc1", "fc2"}));
  EXPECT_TRUE(quantizer.summary().float_layers.empty());

  const auto graph = models::as_torchscript(model)->graph_text();
  EXPECT_EQ(occurrences(graph, "shrink::int8_linear"), 2u) << graph;
  EXPECT_EQ(occurrences(graph, "aten::linear"), 0u) << graph;
  // The state_dict holds the int8 layers under the module's names, and no float weight.
  EXPECT_FALSE(model.module->named_parameters().contains("fc1.weight"));
  const auto buffers = model.module->named_buffers();
  ASSERT_TRUE(buffers.contains("fc1.weight"));
  EXPECT_EQ(buffers["fc1.weight"].scalar_type(), at::kChar);
  // oneDNN's default: symmetric per-channel MinMax, scale = max |w| of the row / 127.5.
  const auto scale = std::get<0>(w1.abs().max(1)) / 127.5;
  EXPECT_TRUE(torch::allclose(buffers["fc1.weight_scale"], scale, 1e-6, 0)) << buffers["fc1.weight_scale"];
  const auto expected_int8 =
      at::quantize_per_channel(w1, scale.to(at::kFloat), torch::zeros({32}, at::kLong), 0, at::kQInt8).int_repr();
  EXPECT_TRUE(torch::equal(buffers["fc1.weight"], expected_int8));

  // The logits: the dequantized weights' own up to the per-batch quantization of the inputs.
  torch::manual_seed(3);
  const auto x = torch::rand({16, 1, 8, 8});
  const auto deq = [&](const std::string& l) {
    return buffers[l + ".weight"].to(at::kFloat) * buffers[l + ".weight_scale"].unsqueeze(1);
  };
  torch::NoGradGuard no_grad;
  const auto expected = torch::linear(torch::relu(torch::linear(torch::flatten(x, 1), deq("fc1"), b1)), deq("fc2"), b2);
  const auto got = model.forward(x);
  EXPECT_LE((got - expected).abs().max().item<double>(), 0.02) << got - expected;
  EXPECT_GT((got - torch::linear(torch::relu(torch::linear(torch::flatten(x, 1), w1, b1)), w2, b2))
                .abs()
                .max()
                .item<double>(),
            0)
      << "the int8 model gives the float model's logits to the bit";
}

TEST(TorchScriptInt8, AnExcludedLinearStaysFloatWithTheReason) {
  const auto dir = scratch_dir("ts_int8_exclude");
  save_scripted_mlp(dir / "net.ts");
  models::allow_torchscript(true);
  auto model = models::from_torchscript(dir / "net.ts");
  namespace qz = compress::quantize;
  qz::PostTrainingQuantizer quantizer(model,
                                      qz::QuantizeOptions().method(qz::QuantizeMethod::kDynamic).exclude({"^fc2$"}));
  quantizer.convert(model);
  EXPECT_EQ(quantizer.summary().int8_layers, (std::vector<std::string>{"fc1"}));
  ASSERT_EQ(quantizer.summary().float_layers.size(), 1u);
  EXPECT_EQ(quantizer.summary().float_layers[0].layer, "fc2");
  EXPECT_EQ(quantizer.summary().float_layers[0].reason, "excluded by the recipe (exclude)");
  const auto graph = models::as_torchscript(model)->graph_text();
  EXPECT_EQ(occurrences(graph, "shrink::int8_linear"), 1u) << graph;
  EXPECT_EQ(occurrences(graph, "aten::linear"), 1u) << graph;
}

TEST(TorchScriptInt8, ARecipesInt8StageRestoresFromItsFilesAndItsTorchScriptGivesItsLogitsWithinRounding) {
  const auto recipe = write_recipe(
      "ts_int8_run", torchscript_recipe("  - train:\n      model: small\n      epochs: 1\n      batch_size: 32\n"
                                        "  - quantize:\n      model: small\n      method: ptq_dynamic\n"));
  auto text = read_file(recipe);
  text.replace(text.find("report:\n"), 8, "export:\n  formats: [pt, h5]\nreport:\n");
  write_file(recipe, text);
  save_scripted_mlp(recipe.parent_path() / "net.ts");
  const auto out = recipe.parent_path() / "run";
  const auto run = run_shrink("run --no-progress --out " + out.string() + " " + recipe.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto report = read_json(out / "report.json");
  const auto stage = report["stages"][1];
  EXPECT_EQ(stage["quantization"]["int8_layers"], json::array({"fc1", "fc2"})) << stage.dump();

  models::allow_torchscript(true);
  torch::manual_seed(8);
  const auto x = torch::rand({16, 1, 8, 8});
  torch::NoGradGuard no_grad;
  const auto from_pt = models::restore_model(out / "stage-1-quantize" / "small.pt");
  const auto y = from_pt.model.forward(x);
  const auto from_h5 = models::restore_model(out / "stage-1-quantize" / "small.h5");
  EXPECT_TRUE(torch::equal(from_h5.model.forward(x), y));
  auto deployed = torch::jit::load((out / "stage-1-quantize" / "small.torchscript.pt").string());
  EXPECT_TRUE(contains(deployed.get_method("forward").graph()->toString(), "quantized::linear_dynamic"));
  // LibTorch's dynamic kernel in the graph and shrink's in the model quantize the batch alike and
  // sum exactly in int32; only the float rescale rounds differently (measured: 2.4e-7 at most here).
  EXPECT_TRUE(torch::allclose(deployed.forward({x}).toTensor(), y, /*rtol=*/1e-5, /*atol=*/1e-6));
  // Its accuracy is the report's, restored with no recipe.
  const auto evaluated =
      run_shrink("eval --no-progress --torchscript " + (out / "stage-1-quantize" / "small.h5").string());
  EXPECT_EQ(evaluated.exit_code, 0) << evaluated.output;
}

TEST(TorchScriptModel, OneWhoseOutputIsNotALogitPerClassIsARecipeErrorAtItsFile) {
  const auto recipe = write_recipe("ts_classes", torchscript_recipe(kPrune));
  save_scripted_linear(recipe.parent_path() / "net.ts", 3);
  const auto r = run_shrink("validate " + recipe.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "returns [2, 3] for 2 samples; expected [2, 4]")) << r.output;
}

TEST(TorchScriptModel, AFileThatIsNotTorchScriptIsARecipeErrorNamingIt) {
  const auto recipe = write_recipe("ts_garbage", torchscript_recipe(kPrune));
  write_file(recipe.parent_path() / "net.ts", "not a zip archive");
  const auto r = run_shrink("validate " + recipe.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "net.ts: not a TorchScript file torch::jit::load reads")) << r.output;
}

TEST(TorchScriptModel, FeatureHintsOnOneSayItsSubmodulesCannotBeTapped) {
  const auto recipe =
      write_recipe("ts_features", torchscript_recipe("  - distill:\n"
                                                     "      model: small\n"
                                                     "      teacher: small2\n"
                                                     "      features: [{student: fc, teacher: classifier.0}]\n"
                                                     "      epochs: 1\n"));
  auto text = read_file(recipe);
  text.replace(text.find("stages:\n"), 8, "  small2:\n    arch: mlp\n    hidden: [8]\nstages:\n");
  write_file(recipe, text);
  save_scripted_linear(recipe.parent_path() / "net.ts");
  const auto r = run_shrink("validate " + recipe.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "a TorchScript module's submodules cannot be tapped")) << r.output;
}

TEST(TorchScriptModel, AScriptedNetOutsideTheZooPrunedTo80PercentComesBackToPyTorch) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("ts_scripted");
  ASSERT_TRUE(make_pytorch_net(dir, "script"));
  const auto report =
      run_and_check_in_pytorch(dir,
                               "name: ts\nseed: 7\ndevice: cpu\nthreads: 1\n" + kIdxData +
                                   "models:\n  net:\n    arch: torchscript\n    file: net.ts\nstages:\n" + kPrune80 +
                                   "report:\n  latency_batch_sizes: [1]\n  warmup: 1\n  iterations: 3\n",
                               "net");
  EXPECT_NEAR(pruned_sparsity(report["stages"][0]), 0.8, 0.005);
}

// A module scripted by PyTorch 2.x (`make test-torch2` names its python in SHRINK_TORCH2_PYTHON;
// `make test` where that venv exists): LibTorch 1.13 and 2.x read what its torch.jit.save writes,
// and the .pth and TorchScript file shrink gives back load in that PyTorch with its defaults
// (torch.load's weights_only=True since 2.6).
TEST(TorchScriptModel, ANetScriptedByPyTorch2PrunedTo80PercentComesBackToPyTorch2) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const char* python = std::getenv("SHRINK_TORCH2_PYTHON");
  if (!python || !*python || !fs::exists(python)) {
    GTEST_SKIP() << "no PyTorch 2.x: SHRINK_TORCH2_PYTHON names a python with it (scripts/install-torch2.sh makes one)";
  }
  const auto dir = scratch_dir("ts_torch2");
  ASSERT_TRUE(make_pytorch_net(dir, "script", python));
  const auto report =
      run_and_check_in_pytorch(dir,
                               "name: ts\nseed: 7\ndevice: cpu\nthreads: 1\n" + kIdxData +
                                   "models:\n  net:\n    arch: torchscript\n    file: net.ts\nstages:\n" + kPrune80 +
                                   "report:\n  latency_batch_sizes: [1]\n  warmup: 1\n  iterations: 3\n",
                               "net", python);
  EXPECT_NEAR(pruned_sparsity(report["stages"][0]), 0.8, 0.005);
}

TEST(TorchScriptModel, ATracedNetPrunedThenDistilledFromAPyTorchTeacherComesBackToPyTorch) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("ts_traced");
  ASSERT_TRUE(make_pytorch_net(dir, "trace"));
  const auto report = run_and_check_in_pytorch(
      dir,
      "name: ts\nseed: 7\ndevice: cpu\nthreads: 1\n" + kIdxData +
          "models:\n  net:\n    arch: torchscript\n    file: net.ts\n"
          "  teacher:\n    arch: mlp\n    hidden: [32, 16]\n    init: m.pth\nstages:\n" +
          kPrune80 +
          "  - distill:\n      model: net\n      teacher: teacher\n      epochs: 2\n      batch_size: 32\n"
          "      optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n"
          "report:\n  latency_batch_sizes: [1]\n  warmup: 1\n  iterations: 3\n",
      "net");
  // The distillation kept the pruned zeros.
  EXPECT_NEAR(pruned_sparsity(report["stages"][1]), 0.8, 0.005);
}

// byom.py's net (depthwise conv, GELU, LayerNorm, residual add) scripted in PyTorch, made int8 by a
// recipe: its TorchScript gives shrink's logits in PyTorch, and PyTorch's own graph-mode dynamic
// quantization of the same file (torch.ao.quantization.quantize_dynamic_jit, per-channel weights)
// makes the same int8 weights and scales. Activations differ by design where the CPU has VNNI:
// PyTorch quantizes them to 7 bits (reduce_range, for FBGEMM's 16-bit sums), shrink to 8, as ONNX
// Runtime does; without VNNI shrink keeps 7 bits too (its logits then equal PyTorch's).
TEST(TorchScriptInt8, AScriptedNetsInt8TorchScriptRunsInPyTorchWithPyTorchsOwnInt8Weights) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("ts_int8_python");
  ASSERT_TRUE(make_pytorch_net(dir, "script"));
  write_file(dir / "recipe.yaml", "name: ts\nseed: 7\ndevice: cpu\nthreads: 1\n" + kIdxData +
                                      "models:\n  net:\n    arch: torchscript\n    file: net.ts\nstages:\n"
                                      "  - quantize:\n      model: net\n      method: ptq_dynamic\n"
                                      "report:\n  latency_batch_sizes: [1]\n  warmup: 1\n  iterations: 3\n");
  const auto run =
      run_shrink("run --no-progress --out " + (dir / "run").string() + " " + (dir / "recipe.yaml").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto stage = read_json(dir / "run" / "report.json")["stages"][0];
  EXPECT_EQ(stage["quantization"]["int8_layers"], json::array({"head.0", "head.2"})) << stage.dump();
  const auto artifacts = stage.at("artifacts");

  write_probe(dir / "run" / artifacts["pt"].get<std::string>(), dir / "probe.pth");
  // PyTorch 1.13 (oneDNN, as shrink) and, where SHRINK_TORCH2_PYTHON names one, 2.x (its x86 engine).
  std::vector<std::string> pythons{"/usr/bin/python3"};
  if (const char* python2 = std::getenv("SHRINK_TORCH2_PYTHON"); python2 && *python2 && fs::exists(python2)) {
    pythons.emplace_back(python2);
  }
  for (const auto& python : pythons) {
    const auto logits = run_command(python + " -W ignore " + tests_dir() + "/python/byom.py logits " +
                                    (dir / "run" / artifacts["torchscript"].get<std::string>()).string() + " " +
                                    (dir / "probe.pth").string() + " 2>&1");
    ASSERT_EQ(logits.exit_code, 0) << logits.output;
    const double diff = last_json_line(logits.output)["max_abs_diff"].get<double>();
    std::printf("int8 TorchScript net in %s's PyTorch: logits %.2g from shrink's\n", python.c_str(), diff);
    EXPECT_LE(diff, 1e-4) << python << ": " << logits.output;
  }

  const auto theirs = run_command("/usr/bin/python3 -W ignore " + tests_dir() + "/python/byom.py pytorch_dynamic " +
                                  dir.string() + " " + (dir / "run" / artifacts["pth"].get<std::string>()).string() +
                                  " " + (dir / "probe.pth").string() + " 2>&1");
  ASSERT_EQ(theirs.exit_code, 0) << theirs.output;
  const auto t = last_json_line(theirs.output);
  EXPECT_EQ(t["layers"], 2) << theirs.output;
  EXPECT_EQ(t["int8_mismatches"], 0) << theirs.output;
  EXPECT_LE(t["max_scale_diff"].get<double>(), 1e-7) << theirs.output;
  const double ours = stage["metrics"]["accuracy"].get<double>();
  std::printf(
      "int8 TorchScript net: accuracy %.4f in shrink, %.4f with PyTorch's quantize_dynamic_jit; logits %.2g apart\n",
      ours, t["accuracy"].get<double>(), t["max_abs_diff"].get<double>());
  EXPECT_NEAR(t["accuracy"].get<double>(), ours, 0.01) << theirs.output;
}
