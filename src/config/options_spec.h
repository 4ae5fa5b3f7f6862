// One description per options struct: each recipe key bound to the struct's TORCH_ARG member, with
// its schema. Defaults come from a default-constructed struct, so the library's defaults, the
// recipe schema's defaults, the parser and the effective recipe cannot disagree; the library's
// validate() checks a struct against the same schema (one range, one message), and checkpoints
// fingerprint what the spec emits. Enum members are bound by the names their enum declares
// (core/enum_names.h).
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "config/schema.h"
#include "core/enum_names.h"
#include "core/error.h"

namespace shrink::config {

template <class T>
struct Binding {
  std::string key;
  SchemaPtr schema;
  std::function<YAML::Node(const T&)> get;
  std::function<void(T&, const YAML::Node&)> set;
  bool required = false;
  // An optional key with no default: absent from the effective recipe until given, and skipped by
  // emit() while its getter gives null (an unset c10::optional).
  bool optional = false;
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
  const std::string& tag_key() const { return tag_key_; }

  // The schema of the map these options come from; absent keys default to `defaults`' values.
  SchemaPtr schema(const T& defaults = T{}, std::vector<Field> extra = {}) const {
    std::vector<Field> common = std::move(extra);
    std::map<std::string, std::vector<Field>> variants;
    for (const auto& b : bindings_) {
      Field f = b.required   ? config::required(b.key, b.schema)
                : b.optional ? config::optional(b.key, b.schema)
                             : with_default_node(b.key, b.schema, b.get(defaults));
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

  // Every key optional, with no defaults: the keys a recipe gives overlay a base chosen elsewhere
  // (an int8 engine's default observer), and the effective recipe shows only those.
  SchemaPtr overlay_schema() const {
    SHRINK_CHECK(tag_key_.empty(), "overlay_schema: options with variants ('", tag_key_, "')");
    std::vector<Field> fields;
    for (const auto& b : bindings_) {
      Field f = config::optional(b.key, b.schema);
      f.doc = b.doc;
      fields.push_back(f);
    }
    return map_of(std::move(fields));
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
        throw core::Error(
            core::cat("option '", b.key, "' does not fit its binding: ", e.what(), " [", dump.c_str(), "]"));
      }
    }
    return base;
  }

  // Throws a UsageError "<what>: <key>: <what was expected>" for each value outside its schema
  // (ranges, choices): what the library's validate() calls, so recipes and C++ callers meet the
  // same limits with the same words.
  void check(const T& options, const std::string& what) const {
    const auto problems = validate(emit(options), *schema(), Source{});
    if (problems.empty()) return;
    std::vector<std::string> lines;
    for (const auto& d : problems) lines.push_back(d.key.empty() ? d.message : d.key + ": " + d.message);
    throw core::UsageError(core::cat(what, ": ", core::join(lines, "; ")));
  }

  // The options as one line of text (flow-style YAML of emit()): checkpoint fingerprints.
  std::string text(const T& options) const {
    YAML::Emitter out;
    out.SetMapFormat(YAML::Flow);
    out.SetSeqFormat(YAML::Flow);
    out << emit(options);
    return out.c_str();
  }

  // The options as the recipe map that parses back to them (only the active variant's keys).
  YAML::Node emit(const T& options) const {
    YAML::Node out(YAML::NodeType::Map);
    const std::string tag = tag_key_.empty() ? "" : get(tag_key_)->get(options).Scalar();
    for (const auto& b : bindings_) {
      if (!applies(b, tag)) continue;
      auto node = b.get(options);
      if (!(b.optional && node.IsNull())) out[b.key] = node;
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

// The recipe's choices for an enum: the names it declares.
template <class E>
SchemaPtr one_of() {
  return one_of(core::enum_choices<E>());
}

template <class V>
YAML::Node to_node(const V& value) {
  if constexpr (std::is_same_v<V, double>) {
    return shortest_number(value);
  } else if constexpr (std::is_enum_v<V>) {
    return YAML::Node(core::name_of(value));
  } else {
    return YAML::Node(value);
  }
}

template <class V>
V from_node(const YAML::Node& node, const std::string& key) {
  if constexpr (std::is_enum_v<V>) {
    return core::enum_from_name<V>(node.Scalar(), key);
  } else {
    return node.as<V>();
  }
}

// A binding through getter/setter lambdas; the value type is the getter's.
template <class T, class Get, class Set>
Binding<T> bind(std::string key, SchemaPtr schema, Get get, Set set, std::string doc = "") {
  using V = std::decay_t<decltype(get(std::declval<const T&>()))>;
  return Binding<T>{key,
                    std::move(schema),
                    [get](const T& o) { return to_node<V>(get(o)); },
                    [set, key](T& o, const YAML::Node& n) { set(o, from_node<V>(n, key)); },
                    false,
                    false,
                    {},
                    std::move(doc)};
}

// An enum member under other names than its own (the recipe's `ptq_static` for the library's
// `static`): `names` maps every value.
template <class T, class E, class Get, class Set>
Binding<T> bind_enum(std::string key, core::EnumNames<E> names, Get get, Set set, std::string doc = "") {
  std::vector<std::string> choices;
  for (const auto& [value, name] : names) choices.push_back(name);
  return Binding<T>{
      key,
      one_of(choices),
      [get, names, key](const T& o) {
        const E value = get(o);
        for (const auto& [v, name] : names) {
          if (v == value) return YAML::Node(name);
        }
        throw core::Error(core::cat("option '", key, "' has no name for value ", static_cast<int>(value)));
      },
      [set, names, key](T& o, const YAML::Node& n) {
        for (const auto& [v, name] : names) {
          if (name == n.Scalar()) return set(o, v);
        }
        throw core::UsageError(core::cat(key, ": no choice '", n.Scalar(), "'"));
      },
      false,
      false,
      {},
      std::move(doc)};
}

// Options nested under a key (e.g. `optimizer` in training options), described by their own spec.
template <class T, class Sub, class Get, class Set>
Binding<T> nest(std::string key, const OptionsSpec<Sub>& spec, Get get, Set set, std::string doc = "") {
  return Binding<T>{key,
                    spec.schema(get(T{})),
                    [spec, get](const T& o) { return spec.emit(get(o)); },
                    [spec, get, set](T& o, const YAML::Node& n) { set(o, spec.parse(n, get(o))); },
                    false,
                    false,
                    {},
                    std::move(doc)};
}

template <class T>
Binding<T> required_key(Binding<T> b) {
  b.required = true;
  return b;
}

template <class T>
Binding<T> no_default(Binding<T> b) {
  b.optional = true;
  return b;
}

// A list under `key` whose items are options of their own (`features:` of a distill modifier).
template <class T, class Item, class Get, class Set>
Binding<T> nest_list(std::string key, const OptionsSpec<Item>& spec, Get get, Set set, std::string doc = "") {
  return Binding<T>{key,
                    list_of(spec.schema()),
                    [spec, get](const T& o) {
                      YAML::Node n(YAML::NodeType::Sequence);
                      for (const auto& item : get(o)) n.push_back(spec.emit(item));
                      return n;
                    },
                    [spec, set](T& o, const YAML::Node& n) {
                      std::vector<Item> items;
                      for (const auto& item : n) items.push_back(spec.parse(item));
                      set(o, std::move(items));
                    },
                    false,
                    false,
                    {},
                    std::move(doc)};
}

// The keys of `spec`, whose options T holds as one member, bound at T's own level (a quantize
// stage's keys are its QuantizeOptions' and its calibration's side by side).
template <class T, class Sub, class Get, class Set>
std::vector<Binding<T>> flatten(const OptionsSpec<Sub>& spec, Get get, Set set) {
  SHRINK_CHECK(spec.tag_key().empty(), "flatten: options with variants ('", spec.tag_key(), "') keep their own map");
  std::vector<Binding<T>> out;
  for (const auto& b : spec.bindings()) {
    out.push_back(Binding<T>{b.key, b.schema, [b, get](const T& o) { return b.get(get(o)); },
                             [b, get, set](T& o, const YAML::Node& n) {
                               Sub sub = get(o);
                               b.set(sub, n);
                               set(o, std::move(sub));
                             },
                             b.required, b.optional, b.variants, b.doc});
  }
  return out;
}

template <class T>
Binding<T> only_for(std::vector<std::string> variants, Binding<T> b) {
  b.variants = std::move(variants);
  return b;
}

}  // namespace shrink::config

// Binds recipe key `name` to the TORCH_ARG member of the same name: the key is the C++ name.
#define SHRINK_OPTION(T, name, schema, ...) \
  ::shrink::config::bind<T>(                \
      #name, schema, [](const T& o) { return o.name(); }, [](T& o, auto v) { o.name(std::move(v)); }, ##__VA_ARGS__)
#define SHRINK_NESTED(T, name, spec, ...) \
  ::shrink::config::nest<T>(              \
      #name, spec, [](const T& o) { return o.name(); }, [](T& o, auto v) { o.name(std::move(v)); }, ##__VA_ARGS__)
