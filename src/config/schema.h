// Declarative schemas for recipe YAML: one description drives validation (every error, located),
// default filling (the effective recipe) and --set overrides.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace shrink::config {

struct Schema;
using SchemaPtr = std::shared_ptr<const Schema>;

struct Field {
  std::string key;
  SchemaPtr schema;
  bool required = false;
  // Filled into the effective recipe when absent. Held by pointer: YAML::Node's assignment writes
  // through to the node it refers to, so Fields must never be assigned over one another's values.
  std::shared_ptr<const YAML::Node> default_value;
  std::string doc;  // one line for the generated key reference
};

enum class Kind { kInt, kFloat, kBool, kString, kEnum, kList, kMap, kDict, kTagged };

// Custom check on a node that already has the right shape; returns "" or what was expected.
using Check = std::function<std::string(const YAML::Node& node)>;

struct Schema {
  Kind kind = Kind::kString;
  // kInt, kFloat
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  // kEnum
  std::vector<std::string> choices;
  // kList, kDict: the item schema
  SchemaPtr item;
  size_t min_items = 0;
  // kMap: fixed fields; when tag_key is set, the value of that field selects extra fields.
  std::vector<Field> fields;
  std::string tag_key;
  std::map<std::string, std::vector<Field>> variants;
  // kTagged: a one-key map {tag: body}; the tag selects the body's schema (recipe stages).
  std::map<std::string, SchemaPtr> tagged;
  // kString: must name a key of the root map at this key ("models").
  std::string ref;
  Check check;
};

// Builders, so schemas read like the YAML they describe.
SchemaPtr integer(std::optional<double> min = std::nullopt, std::optional<double> max = std::nullopt);
SchemaPtr number(std::optional<double> min = std::nullopt, std::optional<double> max = std::nullopt,
                 bool min_exclusive = false, bool max_exclusive = false);
SchemaPtr positive();  // a number > 0
SchemaPtr fraction();  // a number in [0, 1)
SchemaPtr boolean();
SchemaPtr string(Check check = nullptr);
SchemaPtr reference(const std::string& root_key);
SchemaPtr one_of(std::vector<std::string> choices);
SchemaPtr list_of(SchemaPtr item, size_t min_items = 0);
SchemaPtr map_of(std::vector<Field> fields, Check check = nullptr);
SchemaPtr tagged_map(std::vector<Field> common, std::string tag_key,
                     std::map<std::string, std::vector<Field>> variants);
SchemaPtr dict_of(SchemaPtr item, size_t min_items = 0);
SchemaPtr tagged_union(std::map<std::string, SchemaPtr> bodies);

Field required(std::string key, SchemaPtr schema);
Field optional(std::string key, SchemaPtr schema);  // absent stays absent
// A double as its shortest text that reads back exactly (0.9, not 0.90000000000000002).
YAML::Node shortest_number(double value);

template <class T>
Field with_default(std::string key, SchemaPtr schema, const T& value) {
  if constexpr (std::is_same_v<T, double>) {
    return Field{std::move(key), std::move(schema), false, std::make_shared<const YAML::Node>(shortest_number(value)),
                 ""};
  } else {
    return Field{std::move(key), std::move(schema), false, std::make_shared<const YAML::Node>(value), ""};
  }
}
Field with_default_node(std::string key, SchemaPtr schema, YAML::Node value);
// The field with its line in the generated key reference.
inline Field documented(Field f, std::string doc) {
  f.doc = std::move(doc);
  return f;
}

// Where diagnostics point: the file, and which key paths came from --set instead.
struct Source {
  std::string file;
  std::set<std::string> overridden;  // dotted key paths set on the command line
};

// Validates `root` against `schema`; returns every problem found (empty = valid).
std::vector<core::Diagnostic> validate(const YAML::Node& root, const Schema& schema, const Source& source);
// Inserts defaults for absent optional fields, recursively, so the tree is the effective recipe.
void fill_defaults(YAML::Node node, const Schema& schema);
// The default of the map's field `key` (a command-line flag that mirrors a recipe key shows the
// same); an Error when the field does not exist or has no default.
YAML::Node default_of(const Schema& map, const std::string& key);

// One row of the key reference: a dotted key (list items as `[]`, variants as `(name: value)`),
// what it takes, its default and its doc line.
struct KeyDoc {
  std::string key;
  std::string type;
  std::string default_value;  // "required", "—" (optional, no default) or the YAML value
  std::string doc;
};
std::vector<KeyDoc> key_reference(const Schema& schema, const std::string& prefix = "");
// The rows as a Markdown table (the docs embed it; a test keeps them equal).
std::string key_reference_markdown(const std::vector<KeyDoc>& rows);

// Closest candidate by edit distance, for "did you mean" hints; "" when none is close.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace shrink::config
