// The architecture registry and the recipe schema derived from it.
#include "models/registry.h"

#include <algorithm>

#include "core/error.h"

namespace shrink::models {

using core::cat;

ArchitectureRegistry::ArchitectureRegistry() { add_zoo(*this); }

ArchitectureRegistry& ArchitectureRegistry::instance() {
  static ArchitectureRegistry registry;
  return registry;
}

void ArchitectureRegistry::add(Architecture a) {
  if (a.name.empty() || a.name == "arch") throw core::UsageError(cat("invalid architecture name '", a.name, "'"));
  if (find(a.name)) throw core::UsageError(cat("architecture '", a.name, "' is registered already"));
  SHRINK_CHECK(a.options && a.options->kind == config::Kind::kMap && a.options->tag_key.empty(), "architecture '",
               a.name, "': options must be a plain map of keys");
  SHRINK_CHECK(a.build, "architecture '", a.name, "' has no builder");
  architectures_.push_back(std::move(a));
}

const Architecture* ArchitectureRegistry::find(const std::string& name) const {
  for (const auto& a : architectures_) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::vector<std::string> ArchitectureRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& a : architectures_) out.push_back(a.name);
  return out;
}

Model build_model(const std::string& arch, const YAML::Node& options, const ModelInput& input) {
  const auto& registry = ArchitectureRegistry::instance();
  const auto* a = registry.find(arch);
  if (!a) {
    std::string names;
    for (const auto& n : registry.names()) names += (names.empty() ? "" : ", ") + n;
    throw core::UsageError(cat("unknown architecture '", arch, "' (registered: ", names,
                               "); a user model must be registered before it is built or restored"));
  }
  Model m = a->build(options, input);
  SHRINK_CHECK(m.module && m.forward, "architecture '", arch, "' built no module or no forward function");
  return m;
}

Blueprint declared_blueprint(const YAML::Node& model_map, const std::filesystem::path& base) {
  static const std::vector<std::string> kNotOptions = {"arch", "init", "init_stage", "init_prefix"};
  Blueprint b;
  b.arch = model_map["arch"].as<std::string>();
  for (const auto& kv : model_map) {
    const auto& key = kv.first.Scalar();
    if (std::find(kNotOptions.begin(), kNotOptions.end(), key) == kNotOptions.end())
      b.options[key] = YAML::Clone(kv.second);
  }
  const auto* a = ArchitectureRegistry::instance().find(b.arch);
  if (a && a->resolve) a->resolve(b.options, base);
  return b;
}

config::SchemaPtr model_schema() {
  const auto& registry = ArchitectureRegistry::instance();
  std::map<std::string, std::vector<config::Field>> variants;
  for (const auto& name : registry.names()) variants[name] = registry.find(name)->options->fields;
  return config::tagged_map({config::required("arch", config::one_of(registry.names())),
                             config::documented(config::optional("init", config::string()),
                                                "start from this file's weights (.pt, .pth, .h5, .safetensors; "
                                                "shrink's, PyTorch's or Hugging Face's) or a run "
                                                "folder's last stage of this model, instead of random ones"),
                             config::documented(config::optional("init_stage", config::integer(0)),
                                                "with init a run folder: that stage's file"),
                             config::documented(config::optional("init_prefix", config::string()),
                                                "stripped from every name in the init file (DDP's module.)")},
                            "arch", variants);
}

}  // namespace shrink::models
