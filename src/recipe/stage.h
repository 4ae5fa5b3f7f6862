// Stage plug-in interface: each stage kind registers its schema and a factory; the runner only
// sees this interface, so new kinds (prune, quantize, distill) never touch it.
#pragma once

#include <c10/core/Device.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/kind_registry.h"
#include "config/schema.h"
#include "data/source.h"
#include "dist/process_group.h"
#include "models/blueprint.h"
#include "models/model.h"
#include "train/history.h"
#include "train/modifier.h"

namespace shrink::recipe {

// Recipes are written in config's schema vocabulary.
using namespace config;

// A model a recipe declared, alive across stages; stages that change its structure record how in
// its blueprint, which every exported file carries.
struct ModelSlot {
  std::string name;
  models::Blueprint blueprint;
  models::Model model;
};

struct StageContext {
  int64_t index = 0;
  std::map<std::string, ModelSlot>* models = nullptr;
  const data::Splits* data = nullptr;
  c10::Device device = c10::kCPU;
  uint64_t seed = 0;               // the stage's own seed, derived from the recipe seed
  std::filesystem::path work_dir;  // the stage's scratch folder (checkpoints)
  bool resume = false;             // continue from a checkpoint in work_dir when present
  bool progress = true;
  // Data-parallel runs: the ranks training together (null: this process alone).
  std::shared_ptr<dist::ProcessGroup> group;
};

// What a stage reports beside the measurements every stage gets: typed, handed to the report as
// it is (no JSON inside the process).
struct StageOutcome {
  std::optional<train::TrainingHistory> training;
  // Stages that train list their modifiers (an empty list when they ran none).
  std::optional<std::vector<train::ModifierRecord>> modifiers;
  std::vector<std::shared_ptr<const train::ReportSection>> sections;
};

// The batches a stage runs its model at, so validation can size the memory before any work.
struct StageBatches {
  int64_t train = 0;  // 0: the stage does not train
  int64_t eval = 0;   // forward passes without gradients (evaluation, calibration)
  // Models held beside the stage's own while it trains, run without gradients on each training
  // batch (distillation teachers).
  std::vector<std::string> companions;
};

class Stage {
 public:
  virtual ~Stage() = default;
  // The model the stage changes: it is evaluated, measured and exported after the stage.
  virtual const std::string& model() const = 0;
  // Does the work; returns what the stage reports of it.
  virtual StageOutcome run(StageContext& ctx) = 0;
  // Checks the stage against a freshly built instance of its model before any work starts
  // (e.g. that selectors match parameters); throws a UsageError saying what is wrong.
  virtual void check(torch::nn::Module& model) const {}
  // True when the stage leaves its model int8 (quantize, a training run with QAT): no later stage
  // can train or quantize it again, which validation reports.
  virtual bool ends_in_int8() const { return false; }
  virtual StageBatches batches() const { return {}; }
};

struct StageKind {
  std::string name;
  SchemaPtr schema;
  // Builds the stage from its validated, default-filled recipe body.
  std::function<std::unique_ptr<Stage>(const YAML::Node& body)> create;
};

using StageRegistry = KindRegistry<StageKind>;

// Registers the stage kinds shrink ships with (one line each, in builtin_stages.cpp).
void register_builtin_stages();

}  // namespace shrink::recipe
