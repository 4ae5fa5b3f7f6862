// Recipe ↔ model zoo: the schema of a `models:` entry and its conversion to typed ModelOptions.
#pragma once

#include <yaml-cpp/yaml.h>

#include "models/registry.h"
#include "recipe/schema.h"

namespace shrink::recipe {

SchemaPtr model_schema();
// `node` must have passed validation against model_schema() with defaults filled.
models::ModelOptions parse_model(const YAML::Node& node);

}  // namespace shrink::recipe
