// The `modifiers:` list of training stages.
#include "recipe/modifier_kind.h"

#include "core/error.h"

namespace shrink::recipe {

using core::cat;

SchemaPtr modifiers_schema() { return list_of(tagged_union(train::ModifierRegistry::instance().schemas())); }

std::vector<std::shared_ptr<const train::ModifierPlan>> parse_modifiers(const YAML::Node& list) {
  std::vector<std::shared_ptr<const train::ModifierPlan>> plans;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto item = *list[i].begin();
    const std::string kind = item.first.Scalar();
    try {
      plans.push_back(modifier_kind(kind).create(item.second));
    } catch (const core::UsageError& e) {
      throw core::UsageError(cat("modifiers.", i, ".", kind, ": ", e.what()));
    }
  }
  return plans;
}

const train::ModifierKind& modifier_kind(const std::string& name) {
  const auto* kind = train::ModifierRegistry::instance().find(name);
  SHRINK_CHECK(kind, "no modifier kind '", name, "' is registered");
  return *kind;
}

}  // namespace shrink::recipe
