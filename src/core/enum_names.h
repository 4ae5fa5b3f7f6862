// Names of enum options, written once beside each enum (as `enum_names(E)`, found by argument-
// dependent lookup) and used everywhere: parsing, printing, recipe schemas, docs, messages.
//
//   enum class Scope { kLayer, kGlobal };
//   inline const core::EnumNames<Scope>& enum_names(Scope) {
//     static const core::EnumNames<Scope> names{{Scope::kLayer, "layer"}, {Scope::kGlobal, "global"}};
//     return names;
//   }
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/format.h"

namespace shrink::core {

template <class E>
using EnumNames = std::vector<std::pair<E, std::string>>;

// The names of E's values, in declaration order.
template <class E>
std::vector<std::string> enum_choices() {
  std::vector<std::string> out;
  for (const auto& [value, name] : enum_names(E{})) out.push_back(name);
  return out;
}

template <class E>
const std::string& name_of(E value) {
  for (const auto& [v, name] : enum_names(E{})) {
    if (v == value) return name;
  }
  throw Error(cat("enum value ", static_cast<int>(value), " has no name"));
}

// The value named `name`; a UsageError naming `what`, the value and the choices otherwise.
template <class E>
E enum_from_name(const std::string& name, const std::string& what) {
  for (const auto& [value, n] : enum_names(E{})) {
    if (n == name) return value;
  }
  throw UsageError(cat(what, " must be one of ", join(enum_choices<E>()), "; got '", name, "'"));
}

}  // namespace shrink::core
