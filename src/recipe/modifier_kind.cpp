// The modifier registry.
#include "recipe/modifier_kind.h"

#include "core/error.h"

namespace shrink::recipe {

using core::cat;

ModifierRegistry& ModifierRegistry::instance() {
  static ModifierRegistry registry;
  return registry;
}

void ModifierRegistry::add(ModifierKind kind) {
  SHRINK_CHECK(!find(kind.name), "modifier kind '", kind.name, "' registered twice");
  kinds_.push_back(std::move(kind));
}

const ModifierKind* ModifierRegistry::find(const std::string& name) const {
  for (const auto& k : kinds_) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::map<std::string, SchemaPtr> ModifierRegistry::schemas() const {
  std::map<std::string, SchemaPtr> out;
  for (const auto& k : kinds_) out[k.name] = k.schema;
  return out;
}

SchemaPtr modifiers_schema() {
  register_builtin_modifiers();
  return list_of(tagged_union(ModifierRegistry::instance().schemas()));
}

std::vector<std::shared_ptr<const ModifierPlan>> parse_modifiers(const YAML::Node& list) {
  std::vector<std::shared_ptr<const ModifierPlan>> plans;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto item = *list[i].begin();
    const std::string kind = item.first.Scalar();
    try {
      plans.push_back(ModifierRegistry::instance().find(kind)->create(item.second));
    } catch (const core::UsageError& e) {
      throw core::UsageError(cat("modifiers.", i, ".", kind, ": ", e.what()));
    }
  }
  return plans;
}

}  // namespace shrink::recipe
