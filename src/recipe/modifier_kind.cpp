// The `modifiers:` list of training stages.
#include "recipe/modifier_kind.h"

#include "core/error.h"

namespace shrink::recipe {

using core::cat;

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
