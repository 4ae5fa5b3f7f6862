// Modifier plug-ins for training stages: each kind registers its schema and a factory for a plan,
// which attaches a library Modifier to a model when the stage runs.
#pragma once

#include <torch/nn/module.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/kind_registry.h"
#include "config/schema.h"
#include "recipe/stage.h"
#include "train/modifier.h"

namespace shrink::recipe {

// Recipes are written in config's schema vocabulary.
using namespace config;

// A modifier as a recipe declares it: typed options, not yet attached to a model.
class ModifierPlan {
 public:
  virtual ~ModifierPlan() = default;
  // Throws a UsageError when the modifier cannot act within a run of `epochs` epochs; `run`
  // names that run for the message ("training run (epochs: 3)").
  virtual void check_epochs(int64_t epochs, const std::string& run) const {}
  // Checks the plan against a freshly built instance of the model (e.g. selectors match).
  virtual void check(torch::nn::Module& model) const {}
  // The tensors of `model` this modifier takes charge of; two modifiers of one run may not share
  // one (two pruners would fight over its mask).
  virtual std::vector<std::string> claims(const torch::nn::Module& model) const { return {}; }
  // The library modifier, attached to the stage's model (it may change the model's structure).
  virtual std::shared_ptr<train::Modifier> attach(ModelSlot& slot, StageContext& ctx) const = 0;
  // True when the modifier converts the model to int8 as training ends (QAT).
  virtual bool converts_to_int8() const { return false; }
};

struct ModifierKind {
  std::string name;
  SchemaPtr schema;
  std::function<std::unique_ptr<ModifierPlan>(const YAML::Node& body)> create;
};

using ModifierRegistry = KindRegistry<ModifierKind>;

// Registers the modifier kinds shrink ships with (one line each, in builtin_stages.cpp).
void register_builtin_modifiers();

// The `modifiers:` list of a training stage, and its parse (in list order).
SchemaPtr modifiers_schema();
std::vector<std::shared_ptr<const ModifierPlan>> parse_modifiers(const YAML::Node& list);

}  // namespace shrink::recipe
