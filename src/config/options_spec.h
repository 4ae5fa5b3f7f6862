// One description per options struct: each recipe key bound to the struct's TORCH_ARG member, with
// its schema. Defaults come from a default-constructed struct, so the library's defaults, the
// recipe schema's defaults, the parser and the effective recipe cannot disagree.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "config/schema.h"

namespace shrink::config {

template <class T>
struct Binding {
  std::string key;
  SchemaPtr schema;
  std::function<YAML::Node(const T&)> get;
  std::function<void(T&, const YAML::Node&)> set;
  bool required = false;
  // Empty: the key belongs to every variant. Else only to these values of the spec's tag key.
  std::vector<std::string> variants;
  std::string doc;  // one line for the generated key reference
};

template <class T>
class OptionsSpec {
 public:
  OptionsSpec() = default;
  explicit OptionsSpec(std::vector<Binding<T>> bindings, std::string tag_key = "")
      : bindings_(std::move(bindings)), tag_key_(std::move(tag_key)) {}

  const std::vector<Binding<T>>& bindings() const { return bindings_; }

  // The schema of the map these options come from; absent keys default to `defaults`' values.
  SchemaPtr schema(const T& defaults = T{}, std::vector<Field> extra = {}) const {
    std::vector<Field> common = std::move(extra);
    std::map<std::string, std::vector<Field>> variants;
    for (const auto& b : bindings_) {
      Field f = b.required ? config::required(b.key, b.schema) : with_default_node(b.key, b.schema, b.get(defaults));
      f.doc = b.doc;
      if (b.variants.empty()) {
        common.push_back(f);
      } else {
        for (const auto& v : b.variants) variants[v].push_back(f);
      }
    }
    if (tag_key_.empty()) return map_of(std::move(common));
    for (const auto& choice : tag_choices()) variants[choice];  // variants without keys of their own
    return tagged_map(std::move(common), tag_key_, std::move(variants));
  }

  // `node` has passed validation against schema(); keys it lacks keep `base`'s values.
  T parse(const YAML::Node& node, T base = T{}) const {
    const std::string tag = tag_of(node, base);
    for (const auto& b : bindings_) {
      if (!applies(b, tag) || !node[b.key]) continue;
      try {
        b.set(base, node[b.key]);
      } catch (const YAML::Exception& e) {
        // Validation accepted the node, so this is a mismatch between the schema and the binding.
        YAML::Emitter dump;
        dump << node[b.key];
        throw core::Error(core::cat("option '", b.key, "' does not fit its binding: ", e.what(), " [", dump.c_str(), "]"));
      }
    }
    return base;
  }

  // The options as the recipe map that parses back to them (only the active variant's keys).
  YAML::Node emit(const T& options) const {
    YAML::Node out(YAML::NodeType::Map);
    const std::string tag = tag_key_.empty() ? "" : get(tag_key_)->get(options).Scalar();
    for (const auto& b : bindings_) {
      if (applies(b, tag)) out[b.key] = b.get(options);
    }
    return out;
  }

 private:
  const Binding<T>* get(const std::string& key) const {
    for (const auto& b : bindings_) {
      if (b.key == key) return &b;
    }
    return nullptr;
  }

  std::vector<std::string> tag_choices() const {
    const auto* tag = get(tag_key_);
    SHRINK_CHECK(tag && tag->schema->kind == Kind::kEnum, "options tag '", tag_key_, "' must be an enum key");
    return tag->schema->choices;
  }

  std::string tag_of(const YAML::Node& node, const T& base) const {
    if (tag_key_.empty()) return "";
    if (node[tag_key_]) return node[tag_key_].Scalar();
    return get(tag_key_)->get(base).Scalar();
  }

  static bool applies(const Binding<T>& b, const std::string& tag) {
    if (b.variants.empty()) return true;
    for (const auto& v : b.variants) {
      if (v == tag) return true;
    }
    return false;
  }

  std::vector<Binding<T>> bindings_;
  std::string tag_key_;
};

template <class V>
YAML::Node to_node(const V& value) {
  if constexpr (std::is_same_v<V, double>) {
    return shortest_number(value);
  } else {
    return YAML::Node(value);
  }
}

// A binding through getter/setter lambdas; the value type is the getter's.
template <class T, class Get, class Set>
Binding<T> bind(std::string key, SchemaPtr schema, Get get, Set set, std::string doc = "") {
  using V = std::decay_t<decltype(get(std::declval<const T&>()))>;
  return Binding<T>{std::move(key), std::move(schema), [get](const T& o) { return to_node<V>(get(o)); },
                    [set](T& o, const YAML::Node& n) { set(o, n.as<V>()); }, false, {}, std::move(doc)};
}

// Options nested under a key (e.g. `optimizer` in training options), described by their own spec.
template <class T, class Sub, class Get, class Set>
Binding<T> nest(std::string key, const OptionsSpec<Sub>& spec, Get get, Set set, std::string doc = "") {
  return Binding<T>{key, spec.schema(get(T{})), [spec, get](const T& o) { return spec.emit(get(o)); },
                    [spec, get, set](T& o, const YAML::Node& n) { set(o, spec.parse(n, get(o))); }, false, {},
                    std::move(doc)};
}

template <class T>
Binding<T> required_key(Binding<T> b) {
  b.required = true;
  return b;
}

template <class T>
Binding<T> only_for(std::vector<std::string> variants, Binding<T> b) {
  b.variants = std::move(variants);
  return b;
}

}  // namespace shrink::config

// Binds recipe key `name` to the TORCH_ARG member of the same name: the key is the C++ name.
#define SHRINK_OPTION(T, name, schema, ...)                                                      \
  ::shrink::config::bind<T>(                                                                    \
      #name, schema, [](const T& o) { return o.name(); },                                       \
      [](T& o, auto v) { o.name(std::move(v)); }, ##__VA_ARGS__)
#define SHRINK_NESTED(T, name, spec, ...)                                                       \
  ::shrink::config::nest<T>(                                                                    \
      #name, spec, [](const T& o) { return o.name(); },                                         \
      [](T& o, auto v) { o.name(std::move(v)); }, ##__VA_ARGS__)
