// Library example: your own model (not from the zoo, with a residual connection) registered with
// shrink, run through a recipe that trains and prunes it, then rebuilt from each exported file
// with no recipe at hand. Built and run by the test suite (ctest: example.custom_model);
// docs/library.md walks through it.
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <iostream>

#include "compress/prune/prune_summary.h"
#include "models/registry.h"
#include "models/restore.h"
#include "recipe/recipe.h"
#include "recipe/runner.h"
#include "train/metrics.h"

namespace fs = std::filesystem;
using namespace shrink;

// 1. The model: input projection, residual blocks (x + fc2(relu(fc1(x)))), classifier head.
struct ResMlpOptions {
  TORCH_ARG(int64_t, width) = 64;
  TORCH_ARG(int64_t, blocks) = 2;
};

struct ResMlpImpl : torch::nn::Module {
  ResMlpImpl(const ResMlpOptions& o, const models::ModelInput& in) {
    int64_t features = 1;
    for (int64_t d : in.shape) features *= d;
    stem = register_module("stem", torch::nn::Linear(features, o.width()));
    for (int64_t b = 0; b < o.blocks(); ++b) {
      fc1.push_back(register_module("block" + std::to_string(b) + "_fc1", torch::nn::Linear(o.width(), o.width())));
      fc2.push_back(register_module("block" + std::to_string(b) + "_fc2", torch::nn::Linear(o.width(), o.width())));
    }
    head = register_module("head", torch::nn::Linear(o.width(), in.num_classes));
  }

  at::Tensor forward(at::Tensor x) {
    x = torch::relu(stem(x.flatten(1)));
    for (size_t b = 0; b < fc1.size(); ++b) x = torch::relu(x + fc2[b](torch::relu(fc1[b](x))));
    return head(x);
  }

  torch::nn::Linear stem{nullptr}, head{nullptr};
  std::vector<torch::nn::Linear> fc1, fc2;
};
TORCH_MODULE(ResMlp);

const char* kRecipe = R"(name: custom-model
seed: 3
threads: 1
data:
  format: synthetic
  synthetic: {samples: 2048, test_samples: 512, classes: 4, shape: [1, 8, 8], noise: 2.0}
models:
  net:
    arch: resmlp
    width: 48
stages:
  - train:
      model: net
      epochs: 3
      batch_size: 64
      optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
  - prune:
      model: net
      sparsity: 0.8
      include: ['fc[12]\.weight$']
      schedule: {kind: agp, start_epoch: 0, end_epoch: 2, frequency: 10}
      finetune: {epochs: 3, batch_size: 64, optimizer: {name: sgd, lr: 0.02, momentum: 0.9}}
report: {latency_batch_sizes: [1], warmup: 1, iterations: 3}
)";

int main(int argc, char** argv) {
  const fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::path("custom_model_run");
  fs::create_directories(dir);

  // 2. Register it: a name, its options (keys, schemas, defaults from the struct), a builder.
  using O = ResMlpOptions;
  models::register_architecture(
      "resmlp",
      config::OptionsSpec<O>(
          {SHRINK_OPTION(O, width, config::integer(1)), SHRINK_OPTION(O, blocks, config::integer(0, 16))}),
      [](const O& options, const models::ModelInput& input) { return ResMlp(options, input); });

  // 3. Run a recipe on it, as `shrink run` would.
  { std::ofstream(dir / "recipe.yaml") << kRecipe; }
  const auto recipe = recipe::load_recipe(dir / "recipe.yaml");
  recipe::RunOptions run;
  run.out_dir = dir / "out";
  run.progress = false;
  run.force = true;  // running the example again replaces its earlier run
  const auto report = recipe::run_recipe(recipe, run);

  // 4. Rebuild every exported file with no recipe, and check it scores what the report says.
  const auto test = data::load_splits(recipe.data).test;
  bool ok = true;
  for (const auto& stage : report.stages) {
    for (const auto& [format, file] : stage.artifacts) {
      const auto restored = models::restore_model(run.out_dir / file);
      const auto r = train::evaluate(*restored.model.module, restored.model.forward, test);
      const bool same = std::abs(r.accuracy - stage.metrics.accuracy) < 1e-12;
      std::cout << file << ": accuracy " << r.accuracy << (same ? " (as reported)" : " (report says otherwise!)")
                << "\n";
      ok = ok && same;
    }
  }
  // The prune stage's one modifier reports what it reached, typed.
  const auto pruning = report.stages.back().modifiers->front().summary;
  const double sparsity = std::dynamic_pointer_cast<const shrink::compress::prune::PruneSummary>(pruning)->sparsity;
  std::cout << "pruned sparsity of the selected weights: " << sparsity << "\n";
  return ok && std::abs(sparsity - 0.8) < 0.01 ? 0 : 1;
}
