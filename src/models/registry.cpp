// The architecture registry and the recipe schema derived from it.
#include "models/registry.h"

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

config::SchemaPtr model_schema() {
  const auto& registry = ArchitectureRegistry::instance();
  std::map<std::string, std::vector<config::Field>> variants;
  for (const auto& name : registry.names()) variants[name] = registry.find(name)->options->fields;
  return config::tagged_map({config::required("arch", config::one_of(registry.names()))}, "arch", variants);
}

}  // namespace shrink::models
