// The open registry recipes name architectures by: a name, the schema of its options, a builder.
// The zoo registers itself; a library user registers their own module the same way and runs
// recipes, pruning and restores on it unchanged.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "config/options_spec.h"
#include "io/state_dict.h"
#include "models/blueprint.h"
#include "models/model.h"
#include "models/zoo.h"

namespace shrink::models {

struct Architecture {
  std::string name;
  config::SchemaPtr options;  // the keys beside `arch`, with their defaults
  // `options` has passed validation against the schema, defaults filled.
  std::function<Model(const YAML::Node& options, const ModelInput& input)> build;
  // Optional: completes validated options as declared in a recipe whose folder is `base` (a file
  // name made absolute, a digest recorded), so the blueprint rebuilds anywhere.
  std::function<void(YAML::Node& options, const std::filesystem::path& base)> resolve;
  // Optional: the tensors of a file without shrink's description (`init:` a checkpoint from
  // elsewhere) under this architecture's names, given its validated options and the data's input —
  // for `bert`, Hugging Face's names mapped, init_layers picked, and a new classification head
  // where the data has labels and the checkpoint is an encoder's.
  std::function<io::StateDict(const io::StateDict& sd, const YAML::Node& options, const ModelInput& input,
                              const std::string& source)>
      import_names;
};

class ArchitectureRegistry {
 public:
  // Holds the zoo from the start.
  static ArchitectureRegistry& instance();
  // Throws a UsageError when the name is taken.
  void add(Architecture architecture);
  const Architecture* find(const std::string& name) const;
  // Registered names, in registration order.
  std::vector<std::string> names() const;

 private:
  ArchitectureRegistry();
  std::vector<Architecture> architectures_;
};

// Registers `name` with options described by `spec`; `build(const Options&, const ModelInput&)`
// returns a Model or a module holder.
template <class Options, class Build>
void register_architecture(const std::string& name, const config::OptionsSpec<Options>& spec, Build build) {
  ArchitectureRegistry::instance().add({name,
                                        spec.schema(),
                                        [spec, build](const YAML::Node& options, const ModelInput& input) {
                                          return to_model(build(spec.parse(options), input));
                                        },
                                        {},
                                        {}});
}

// An architecture without options: `build(const ModelInput&)`.
template <class Build>
void register_architecture(const std::string& name, Build build) {
  ArchitectureRegistry::instance().add(
      {name,
       config::map_of({}),
       [build](const YAML::Node&, const ModelInput& input) { return to_model(build(input)); },
       {},
       {}});
}

// Builds a registered architecture; its parameters come from LibTorch's global generator, so seed
// it first (torch::manual_seed) for reproducible weights. A UsageError lists the registered names
// when `arch` is unknown.
Model build_model(const std::string& arch, const YAML::Node& options, const ModelInput& input);

// The architecture and its options of a validated `models.NAME` map (the keys about where the
// weights start are the recipe's business).
Blueprint declared_blueprint(const YAML::Node& model_map, const std::filesystem::path& base);

// The `models.NAME` map of recipes: `arch`, where its weights start (`init`, `init_stage`,
// `init_prefix`), plus the architecture's own keys.
config::SchemaPtr model_schema();

}  // namespace shrink::models
