// --set key.path=value overrides applied to the recipe tree before validation.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace shrink::recipe {

struct Override {
  std::string path;   // dotted; list items by index: stages.0.train.epochs
  std::string value;  // parsed as YAML, so lists and maps work: [64, 32]
};

// Parses "key.path=value"; throws UsageError when malformed.
Override parse_override(const std::string& arg);
// Sets the value, creating missing map keys; a list index must exist (or equal the length, to
// append). Throws UsageError naming the path otherwise.
void apply_override(YAML::Node root, const Override& override);

}  // namespace shrink::recipe
