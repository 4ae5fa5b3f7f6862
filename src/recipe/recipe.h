// A loaded recipe: overrides applied, validated as a whole, defaults filled, turned into typed parts.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/source.h"
#include "io/state_dict.h"
#include "models/blueprint.h"
#include "recipe/stage.h"
#include "report/measure.h"

namespace shrink::recipe {

struct Recipe {
  std::filesystem::path path;
  std::string file_sha256;             // of the file as written
  std::vector<std::string> overrides;  // the `--set key.path=value` arguments, in order
  YAML::Node effective;                // overrides applied, defaults filled
  std::string name;
  uint64_t seed = 0;
  std::string device;   // cpu | cuda | cuda:N | auto
  int64_t threads = 0;  // 0 = all cores
  data::SourceOptions data;
  std::filesystem::path data_base_dir;  // absolute: relative data paths resolve against it
  // Each model's blueprint as declared: architecture, options, and the recipe's data; the input
  // shape is filled in once the data is loaded.
  std::vector<std::pair<std::string, models::Blueprint>> models;
  // Models whose weights start from a file (`init`) rather than the seed, by name.
  struct Init {
    std::filesystem::path file;  // resolved: a run folder's stage file, relative to the recipe
    std::string prefix;          // stripped from every entry name
  };
  std::map<std::string, Init> inits;
  std::vector<std::shared_ptr<Stage>> stages;
  std::vector<std::string> stage_kinds;  // parallel to stages
  report::LatencyOptions latency;
  // With data without labels: the model (one with an init) whose outputs as brought score every
  // stage by embedding fidelity; empty when the data has labels.
  std::string reference;
  std::vector<io::Format> export_formats;
  bool export_onnx = false;  // `onnx` among export.formats: each stage's model as ONNX too

  // The blueprint of model `name`; a UsageError listing the recipe's models when there is none.
  const models::Blueprint& model(const std::string& name) const;

  // The effective recipe as YAML text: what `shrink validate --print` shows.
  std::string effective_yaml() const;
  // Digest of the effective recipe: two runs with equal digests do the same work.
  std::string effective_sha256() const;
};

// The schema of a whole recipe (stage kinds from the registry).
SchemaPtr recipe_schema();

// Loads and validates `path` with `--set` overrides ("key.path=value"). Every problem found is
// reported in one RecipeError; nothing heavier than reading the recipe and dataset manifests runs.
Recipe load_recipe(const std::filesystem::path& path, const std::vector<std::string>& overrides = {});

}  // namespace shrink::recipe
