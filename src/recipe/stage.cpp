// The stage registry.
#include "recipe/stage.h"

#include "core/error.h"

namespace shrink::recipe {

StageRegistry& StageRegistry::instance() {
  static StageRegistry registry;
  return registry;
}

void StageRegistry::add(StageKind kind) {
  SHRINK_CHECK(!find(kind.name), "stage kind '", kind.name, "' registered twice");
  kinds_.push_back(std::move(kind));
}

const StageKind* StageRegistry::find(const std::string& name) const {
  for (const auto& k : kinds_) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::map<std::string, SchemaPtr> StageRegistry::schemas() const {
  std::map<std::string, SchemaPtr> out;
  for (const auto& k : kinds_) out[k.name] = k.schema;
  return out;
}

}  // namespace shrink::recipe
