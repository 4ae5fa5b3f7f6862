// Library example: writing your own modifier. `freeze` keeps the parameters its regexes name
// unchanged over an epoch window while the rest of the model trains (fine-tuning the head of a
// model, say). Its options, its summary and one registration line live in this file; a recipe then
// names it like shrink's own modifiers, with validation, defaults, `shrink validate --keys`,
// checkpoints and the report all working. No file of shrink changes. Built and run by the test
// suite (ctest: example.freeze_modifier); docs/library.md walks through it.
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <regex>

#include "config/options_spec.h"
#include "models/restore.h"
#include "recipe/recipe.h"
#include "recipe/runner.h"
#include "train/modifier_kind.h"

namespace fs = std::filesystem;
using namespace shrink;

// 1. The options: TORCH_ARG members with their defaults, and the recipe keys bound to them once.
struct FreezeOptions {
  TORCH_ARG(std::vector<std::string>, include) = {};  // regexes searched in parameter names
  TORCH_ARG(double, start_epoch) = 0.0;
  TORCH_ARG(double, end_epoch) = -1.0;  // < 0: to the end of training
};

const config::OptionsSpec<FreezeOptions>& freeze_spec() {
  using O = FreezeOptions;
  static const config::OptionsSpec<O> spec(
      {config::required_key(
           SHRINK_OPTION(O, include, config::list_of(config::string(), 1), "regexes of parameters kept as they are")),
       SHRINK_OPTION(O, start_epoch, config::number(0), "frozen from this epoch"),
       SHRINK_OPTION(O, end_epoch, config::number(-1), "until this epoch; -1: the end")});
  return spec;
}

// Ranges come from the spec; what only code can say is checked here. Found by PlanOf (ADL).
void validate(const FreezeOptions& o) {
  freeze_spec().check(o, "freeze");
  if (o.end_epoch() >= 0 && o.end_epoch() <= o.start_epoch()) {
    throw core::UsageError(
        core::cat("freeze: end_epoch (", o.end_epoch(), ") must be after start_epoch (", o.start_epoch(), ")"));
  }
}

std::vector<std::string> frozen_names(const torch::nn::Module& model, const FreezeOptions& o) {
  std::vector<std::string> names;
  for (const auto& p : model.named_parameters()) {
    for (const auto& pattern : o.include()) {
      if (std::regex_search(p.key(), std::regex(pattern))) {
        names.push_back(p.key());
        break;
      }
    }
  }
  return names;
}

// 2. What the report shows: a typed summary with its JSON entry.
struct FreezeSummary : train::ModifierSummary {
  std::vector<std::string> tensors;
  int64_t frozen_steps = 0;
  std::string key() const override { return "freeze"; }
  nlohmann::json to_json() const override { return {{"tensors", tensors}, {"frozen_steps", frozen_steps}}; }
  std::string reached() const override { return core::cat(tensors.size(), " tensors frozen"); }
};

// 3. The modifier: inside its window, each optimizer step is undone on the frozen tensors (so
// momentum and weight decay cannot move them either).
class Freeze : public train::Modifier {
 public:
  using Options = FreezeOptions;
  static const config::OptionsSpec<FreezeOptions>& spec() { return freeze_spec(); }
  static std::shared_ptr<Freeze> attach(const FreezeOptions& o, train::ModifierContext& ctx) {
    return std::make_shared<Freeze>(ctx.model.module, o);
  }
  // Checked against a fresh model while the recipe is validated, before any work.
  static void check(const FreezeOptions& o, torch::nn::Module& model) {
    if (frozen_names(model, o).empty()) throw core::UsageError("freeze: include matches no parameter");
  }
  static std::vector<std::string> claims(const FreezeOptions& o, const torch::nn::Module& model) {
    return frozen_names(model, o);
  }

  Freeze(std::shared_ptr<torch::nn::Module> module, FreezeOptions options) : options_(std::move(options)) {
    const auto params = module->named_parameters();
    for (const auto& name : frozen_names(*module, options_)) frozen_.emplace_back(name, params[name]);
  }

  std::string name() const override { return "freeze"; }
  train::Window window() const override { return {options_.start_epoch(), options_.end_epoch()}; }
  std::string fingerprint() const override { return freeze_spec().text(options_); }

  void on_step_begin(train::Trainer&, const train::StepInfo& step) override {
    const double epoch = static_cast<double>(step.global_step) / static_cast<double>(step.steps_per_epoch);
    active_ = window().contains(epoch);
    if (!active_) return;
    saved_.clear();
    for (const auto& [name, p] : frozen_) saved_.push_back(p.detach().clone());
  }
  void on_step_end(train::Trainer&, const train::StepInfo&) override {
    if (!active_) return;
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < frozen_.size(); ++i) frozen_[i].second.copy_(saved_[i]);
    ++steps_;
  }

  std::shared_ptr<const train::ModifierSummary> summary() const override {
    auto s = std::make_shared<FreezeSummary>();
    for (const auto& [name, p] : frozen_) s->tensors.push_back(name);
    s->frozen_steps = steps_;
    return s;
  }

 private:
  FreezeOptions options_;
  std::vector<std::pair<std::string, at::Tensor>> frozen_;
  std::vector<at::Tensor> saved_;
  bool active_ = false;
  int64_t steps_ = 0;
};

// 4. One line: recipes may now say `modifiers: [{freeze: {...}}]`.
SHRINK_REGISTER_MODIFIER(freeze, Freeze)

const char* kRecipe = R"(name: freeze-example
seed: 5
threads: 1
data:
  format: synthetic
  synthetic: {samples: 1024, test_samples: 256, classes: 4, shape: [1, 8, 8], noise: 2.0}
models:
  net: {arch: mlp, hidden: [32, 16]}
stages:
  - train: {model: net, epochs: 1, batch_size: 64}
  - train:
      model: net
      epochs: 2
      batch_size: 64
      optimizer: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.001}
      modifiers:
        - freeze: {include: ['^classifier\.0\.']}
report: {latency_batch_sizes: [1], warmup: 1, iterations: 3}
)";

int main(int argc, char** argv) {
  const fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::path("freeze_modifier_run");
  fs::create_directories(dir);
  { std::ofstream(dir / "recipe.yaml") << kRecipe; }
  const auto recipe = recipe::load_recipe(dir / "recipe.yaml");
  recipe::RunOptions run;
  run.out_dir = dir / "out";
  run.progress = false;
  run.force = true;
  const auto report = recipe::run_recipe(recipe, run);

  // The frozen layer left the second stage as the first stage left it; the next one did not.
  const auto before =
      models::restore_model(run.out_dir / report.stages[0].artifacts.at("pt")).model.module->named_parameters();
  const auto after =
      models::restore_model(run.out_dir / report.stages[1].artifacts.at("pt")).model.module->named_parameters();
  const bool frozen = torch::equal(before["classifier.0.weight"], after["classifier.0.weight"]) &&
                      torch::equal(before["classifier.0.bias"], after["classifier.0.bias"]);
  const bool trained = !torch::equal(before["classifier.2.weight"], after["classifier.2.weight"]);
  const auto& record = report.stages[1].modifiers->at(0);
  std::cout << "modifier " << record.kind() << ": " << record.summary->to_json().dump() << "\n"
            << "classifier.0 unchanged: " << (frozen ? "yes" : "NO")
            << ", classifier.2 trained: " << (trained ? "yes" : "NO") << "\n";
  return frozen && trained && record.kind() == "freeze" ? 0 : 1;
}
