// Recipe ↔ data: the `data:` schema, named-dataset manifests (datasets/NAME.yaml) and their
// conversion to data::SourceOptions.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/schema.h"
#include "data/source.h"

namespace shrink::recipe {

// Recipes are written in config's schema vocabulary.
using namespace config;

// $SHRINK_DATASETS_DIR when set, else the datasets/ folder of the source tree.
std::filesystem::path datasets_dir();
std::vector<std::string> known_datasets();

SchemaPtr data_schema();
// `node` must have passed validation with defaults filled. Relative file names resolve against
// the dataset's root, else `base_dir` (the recipe's folder).
data::SourceOptions parse_data(const YAML::Node& node, uint64_t seed, const std::filesystem::path& base_dir);

}  // namespace shrink::recipe
