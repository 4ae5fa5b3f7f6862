// YAML ↔ JSON for recorded settings: recipes speak YAML, reports and model descriptions JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace shrink::core {

// Scalars become integers, numbers or booleans when they read as one, strings otherwise.
nlohmann::json yaml_to_json(const YAML::Node& node);
YAML::Node json_to_yaml(const nlohmann::json& value);

}  // namespace shrink::core
