// A registry of named plug-in kinds (stages, modifiers): each kind brings its schema and factory.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/schema.h"
#include "core/error.h"

namespace shrink::config {

// `Kind` has `name` and `schema` members.
template <class Kind>
class KindRegistry {
 public:
  static KindRegistry& instance() {
    static KindRegistry registry;
    return registry;
  }

  void add(Kind kind) {
    SHRINK_CHECK(!find(kind.name), "kind '", kind.name, "' registered twice");
    kinds_.push_back(std::move(kind));
  }

  const Kind* find(const std::string& name) const {
    for (const auto& k : kinds_) {
      if (k.name == name) return &k;
    }
    return nullptr;
  }

  std::map<std::string, SchemaPtr> schemas() const {
    std::map<std::string, SchemaPtr> out;
    for (const auto& k : kinds_) out[k.name] = k.schema;
    return out;
  }

 private:
  std::vector<Kind> kinds_;
};

}  // namespace shrink::config
