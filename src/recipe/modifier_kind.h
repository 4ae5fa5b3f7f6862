// The `modifiers:` list of training stages: each item names a registered modifier kind
// (train/modifier_kind.h) and gives its keys.
#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>
#include <vector>

#include "config/schema.h"
#include "train/modifier_kind.h"

namespace shrink::recipe {

// Recipes are written in config's schema vocabulary.
using namespace config;

// Every registered kind's schema, as list items {KIND: {...}}.
SchemaPtr modifiers_schema();
// Plans in list order; a plan's UsageError is prefixed with its place ("modifiers.1.qat: ...").
std::vector<std::shared_ptr<const train::ModifierPlan>> parse_modifiers(const YAML::Node& list);
// The registered kind `name` (a shorthand stage's one modifier); an Error when it is not.
const train::ModifierKind& modifier_kind(const std::string& name);

}  // namespace shrink::recipe
