// What rebuilds a model with no recipe at hand: its architecture and options, the input it was
// built for, and every structural change applied since (pruning masks, fused or int8 layers), in
// order. Stored in every file shrink writes (see io/state_dict.h).
#pragma once

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "models/model.h"

namespace shrink::models {

struct Transform {
  std::string kind;         // a registered transform kind (models/restore.h)
  nlohmann::json settings;  // what re-applying it needs
};

struct Blueprint {
  std::string arch;
  YAML::Node options{YAML::NodeType::Map};  // validated, defaults filled
  ModelInput input;
  std::vector<Transform> transforms;
  // The recipe's `data` map (effective) and the folder its relative paths resolve against, so
  // `shrink eval FILE` evaluates on the data the model was trained for; null when unknown.
  nlohmann::json data;
  std::string data_base_dir;
  uint64_t data_seed = 0;  // synthetic data and splits depend on it

  nlohmann::json to_json() const;
  // Throws an Error naming `source` when the description is malformed.
  static Blueprint from_json(const nlohmann::json& j, const std::string& source);
};

}  // namespace shrink::models
