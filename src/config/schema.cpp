// Schema validation: walks YAML and schema together, collecting located diagnostics.
#include "config/schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/format.h"

namespace shrink::config {

using core::cat;
using core::Diagnostic;
using core::join;

namespace {

std::shared_ptr<Schema> make(Kind k) {
  auto s = std::make_shared<Schema>();
  s->kind = k;
  return s;
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return "'" + core::cut_for_message(n.Scalar()) + "'";
    default:
      return "an undefined value";
  }
}

std::string range_text(const Schema& s) {
  if (s.min && s.max) {
    return cat(" in ", s.min_exclusive ? "(" : "[", *s.min, ", ", *s.max, s.max_exclusive ? ")" : "]");
  }
  if (s.min) return cat(s.min_exclusive ? " > " : " >= ", *s.min);
  if (s.max) return cat(s.max_exclusive ? " < " : " <= ", *s.max);
  return "";
}

bool in_range(const Schema& s, double v) {
  if (s.min && (s.min_exclusive ? v <= *s.min : v < *s.min)) return false;
  if (s.max && (s.max_exclusive ? v >= *s.max : v > *s.max)) return false;
  return true;
}

// The map's fields, plus the variant fields its tag selects.
std::vector<const Field*> fields_of(const YAML::Node& n, const Schema& s) {
  std::vector<const Field*> fields;
  for (const auto& f : s.fields) fields.push_back(&f);
  if (s.tag_key.empty() || !(n.IsMap() || n.IsNull())) return fields;
  std::string tag;
  if (n.IsMap() && n[s.tag_key] && n[s.tag_key].IsScalar()) {
    tag = n[s.tag_key].Scalar();
  } else {
    for (const auto& f : s.fields) {
      if (f.key == s.tag_key && f.default_value) tag = f.default_value->Scalar();
    }
  }
  const auto v = s.variants.find(tag);
  if (v != s.variants.end()) {
    for (const auto& f : v->second) fields.push_back(&f);
  }
  return fields;
}

struct Walker {
  const Source& source;
  const YAML::Node& root;
  std::vector<Diagnostic> out;

  void error(const YAML::Node& at, const std::string& path, const std::string& message) {
    Diagnostic d;
    d.key = path;
    d.message = message;
    bool from_cli = false;
    for (const auto& o : source.overridden) {
      if (path == o || path.rfind(o + ".", 0) == 0) from_cli = true;
    }
    if (from_cli) {
      d.file = "--set";
    } else {
      d.file = source.file;
      const auto mark = at.Mark();
      if (mark.line >= 0) {
        d.line = mark.line + 1;
        d.column = mark.column + 1;
      }
    }
    out.push_back(std::move(d));
  }

  static std::string child(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  void walk(const YAML::Node& n, const Schema& s, const std::string& path) {
    const size_t errors_before = out.size();
    switch (s.kind) {
      case Kind::kInt: {
        long long v;
        if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) {
          return error(n, path, cat("expected an integer", range_text(s), ", got ", describe(n)));
        }
        if (!in_range(s, static_cast<double>(v))) {
          return error(n, path, cat("expected an integer", range_text(s), ", got ", v));
        }
        break;
      }
      case Kind::kFloat: {
        double v;
        if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v)) {
          return error(n, path, cat("expected a number", range_text(s), ", got ", describe(n)));
        }
        if (!in_range(s, v)) {
          return error(n, path, cat("expected a number", range_text(s), ", got ", core::cut_for_message(n.Scalar())));
        }
        break;
      }
      case Kind::kBool: {
        bool v;
        if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
          return error(n, path, cat("expected true or false, got ", describe(n)));
        }
        break;
      }
      case Kind::kString:
        if (!n.IsScalar()) return error(n, path, cat("expected a string, got ", describe(n)));
        if (!s.ref.empty()) {
          const auto pool = root[s.ref];
          std::vector<std::string> names;
          if (pool && pool.IsMap()) {
            for (const auto& kv : pool) names.push_back(kv.first.Scalar());
          }
          if (std::find(names.begin(), names.end(), n.Scalar()) == names.end()) {
            std::string hint = closest(n.Scalar(), names);
            return error(n, path,
                         cat("'", core::cut_for_message(n.Scalar()), "' is not defined under '", s.ref,
                             "' (defined: ", names.empty() ? "none" : core::join_some(names), ")",
                             hint.empty() ? "" : "; did you mean '" + hint + "'?"));
          }
        }
        break;
      case Kind::kEnum:
        if (!n.IsScalar() || std::find(s.choices.begin(), s.choices.end(), n.Scalar()) == s.choices.end()) {
          const std::string hint = n.IsScalar() ? closest(n.Scalar(), s.choices) : "";
          return error(n, path,
                       cat("expected one of ", join(s.choices), ", got ", describe(n),
                           hint.empty() ? "" : "; did you mean '" + hint + "'?"));
        }
        break;
      case Kind::kList:
        if (!n.IsSequence()) return error(n, path, cat("expected a list, got ", describe(n)));
        if (n.size() < s.min_items)
          return error(n, path, cat("expected at least ", s.min_items, " item(s), got ", n.size()));
        for (size_t i = 0; i < n.size(); ++i) walk(n[i], *s.item, child(path, std::to_string(i)));
        break;
      case Kind::kDict:
        if (!n.IsMap()) return error(n, path, cat("expected a map of names, got ", describe(n)));
        if (n.size() < s.min_items)
          return error(n, path, cat("expected at least ", s.min_items, " entr", s.min_items == 1 ? "y" : "ies"));
        for (const auto& kv : n) walk(kv.second, *s.item, child(path, kv.first.Scalar()));
        break;
      case Kind::kMap:
        walk_map(n, s, path);
        break;
      case Kind::kTagged: {
        std::vector<std::string> tags;
        for (const auto& kv : s.tagged) tags.push_back(kv.first);
        if (!n.IsMap() || n.size() != 1) {
          return error(n, path,
                       cat("expected a map with exactly one key naming the kind (", join(tags), "), got ",
                           n.IsMap() ? cat("a map with ", n.size(), " keys") : describe(n)));
        }
        const auto kv = *n.begin();
        const std::string tag = kv.first.Scalar();
        const auto it = s.tagged.find(tag);
        if (it == s.tagged.end()) {
          const std::string hint = closest(tag, tags);
          return error(kv.first, child(path, tag),
                       cat("unknown kind '", tag, "' (expected one of ", join(tags), ")",
                           hint.empty() ? "" : "; did you mean '" + hint + "'?"));
        }
        walk(kv.second, *it->second, child(path, tag));
        break;
      }
    }
    if (s.check && out.size() == errors_before) {
      const std::string problem = s.check(n);
      if (!problem.empty()) error(n, path, problem);
    }
  }

  void walk_map(const YAML::Node& n, const Schema& s, const std::string& path) {
    if (!(n.IsMap() || n.IsNull())) return error(n, path, cat("expected a map, got ", describe(n)));
    const auto fields = fields_of(n, s);
    std::vector<std::string> known;
    for (const auto* f : fields) known.push_back(f->key);
    if (n.IsMap()) {
      for (const auto& kv : n) {
        const std::string key = kv.first.Scalar();
        if (std::find(known.begin(), known.end(), key) == known.end()) {
          const std::string hint = closest(key, known);
          error(kv.first, child(path, key),
                cat("unknown key (expected one of ", join(known), ")",
                    hint.empty() ? "" : "; did you mean '" + hint + "'?"));
        }
      }
    }
    for (const auto* f : fields) {
      const auto v = n.IsMap() ? n[f->key] : YAML::Node();
      if (!v) {
        if (f->required) error(n, child(path, f->key), "required key is missing");
        continue;
      }
      walk(v, *f->schema, child(path, f->key));
    }
  }
};

}  // namespace

SchemaPtr integer(std::optional<double> min, std::optional<double> max) {
  auto s = make(Kind::kInt);
  s->min = min;
  s->max = max;
  return s;
}

SchemaPtr number(std::optional<double> min, std::optional<double> max, bool min_exclusive, bool max_exclusive) {
  auto s = make(Kind::kFloat);
  s->min = min;
  s->max = max;
  s->min_exclusive = min_exclusive;
  s->max_exclusive = max_exclusive;
  return s;
}

SchemaPtr positive() { return number(0, std::nullopt, /*min_exclusive=*/true); }
SchemaPtr fraction() { return number(0, 1, /*min_exclusive=*/false, /*max_exclusive=*/true); }

YAML::Node default_of(const Schema& map, const std::string& key) {
  for (const auto& f : map.fields) {
    if (f.key == key && f.default_value) return YAML::Clone(*f.default_value);
  }
  throw core::Error(cat("the schema has no default for '", key, "'"));
}

SchemaPtr boolean() { return make(Kind::kBool); }

SchemaPtr string(Check check) {
  auto s = make(Kind::kString);
  s->check = std::move(check);
  return s;
}

SchemaPtr reference(const std::string& root_key) {
  auto s = make(Kind::kString);
  s->ref = root_key;
  return s;
}

SchemaPtr one_of(std::vector<std::string> choices) {
  auto s = make(Kind::kEnum);
  s->choices = std::move(choices);
  return s;
}

SchemaPtr list_of(SchemaPtr item, size_t min_items) {
  auto s = make(Kind::kList);
  s->item = std::move(item);
  s->min_items = min_items;
  return s;
}

SchemaPtr map_of(std::vector<Field> fields, Check check) {
  auto s = make(Kind::kMap);
  s->fields = std::move(fields);
  s->check = std::move(check);
  return s;
}

SchemaPtr tagged_map(std::vector<Field> common, std::string tag_key,
                     std::map<std::string, std::vector<Field>> variants) {
  auto s = make(Kind::kMap);
  s->fields = std::move(common);
  s->tag_key = std::move(tag_key);
  s->variants = std::move(variants);
  return s;
}

SchemaPtr dict_of(SchemaPtr item, size_t min_items) {
  auto s = make(Kind::kDict);
  s->item = std::move(item);
  s->min_items = min_items;
  return s;
}

SchemaPtr tagged_union(std::map<std::string, SchemaPtr> bodies) {
  auto s = make(Kind::kTagged);
  s->tagged = std::move(bodies);
  return s;
}

YAML::Node shortest_number(double value) {
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return YAML::Node(std::string(buf));
}

Field required(std::string key, SchemaPtr schema) {
  return Field{std::move(key), std::move(schema), true, nullptr, ""};
}
Field optional(std::string key, SchemaPtr schema) {
  return Field{std::move(key), std::move(schema), false, nullptr, ""};
}
Field with_default_node(std::string key, SchemaPtr schema, YAML::Node value) {
  return Field{std::move(key), std::move(schema), false, std::make_shared<const YAML::Node>(std::move(value)), ""};
}

std::vector<Diagnostic> validate(const YAML::Node& root, const Schema& schema, const Source& source) {
  Walker w{source, root, {}};
  w.walk(root, schema, "");
  return w.out;
}

void fill_defaults(YAML::Node node, const Schema& s) {
  switch (s.kind) {
    case Kind::kMap: {
      for (const auto* f : fields_of(node, s)) {
        if (!node[f->key]) {
          if (f->default_value) {
            node[f->key] = YAML::Clone(*f->default_value);
          } else {
            continue;
          }
        }
        fill_defaults(node[f->key], *f->schema);
      }
      break;
    }
    case Kind::kList:
      for (size_t i = 0; i < node.size(); ++i) fill_defaults(node[i], *s.item);
      break;
    case Kind::kDict:
      for (auto kv : node) fill_defaults(kv.second, *s.item);
      break;
    case Kind::kTagged: {
      auto kv = *node.begin();
      const auto it = s.tagged.find(kv.first.Scalar());
      if (it != s.tagged.end()) {
        if (kv.second.IsNull()) node[kv.first.Scalar()] = YAML::Node(YAML::NodeType::Map);
        fill_defaults(node[kv.first.Scalar()], *it->second);
      }
      break;
    }
    default:
      break;
  }
}

namespace {

std::string type_text(const Schema& s) {
  switch (s.kind) {
    case Kind::kInt:
      return "int" + range_text(s);
    case Kind::kFloat:
      return "number" + range_text(s);
    case Kind::kBool:
      return "bool";
    case Kind::kString:
      return s.ref.empty() ? "string" : "name under `" + s.ref + "`";
    case Kind::kEnum:
      return join(s.choices);
    case Kind::kList:
      return cat("list of ", type_text(*s.item), s.min_items ? cat(" (≥ ", s.min_items, ")") : "");
    case Kind::kDict:
      return "map of name → " + type_text(*s.item);
    case Kind::kMap:
      return "map";
    case Kind::kTagged: {
      std::vector<std::string> tags;
      for (const auto& kv : s.tagged) tags.push_back(kv.first);
      return "one-key map: " + join(tags);
    }
  }
  return "";
}

std::string yaml_text(const YAML::Node& n) {
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << n;
  return out.c_str();
}

void reference_rows(const Schema& s, const std::string& prefix, std::vector<KeyDoc>& rows);

void field_rows(const std::vector<Field>& fields, const std::string& prefix, const std::string& variant,
                std::vector<KeyDoc>& rows) {
  for (const auto& f : fields) {
    const std::string key = (prefix.empty() ? "" : prefix + ".") + f.key;
    const bool map_like = f.schema->kind == Kind::kMap;
    KeyDoc row{key + variant, type_text(*f.schema),
               f.required                     ? "required"
               : f.default_value && !map_like ? yaml_text(*f.default_value)
                                              : "—",
               f.doc};
    if (!map_like) rows.push_back(row);
    reference_rows(*f.schema, key, rows);
  }
}

void reference_rows(const Schema& s, const std::string& prefix, std::vector<KeyDoc>& rows) {
  switch (s.kind) {
    case Kind::kMap:
      field_rows(s.fields, prefix, "", rows);
      for (const auto& [tag, fields] : s.variants)
        field_rows(fields, prefix, cat(" (", s.tag_key, ": ", tag, ")"), rows);
      break;
    case Kind::kList:
      if (s.item->kind == Kind::kMap || s.item->kind == Kind::kTagged) reference_rows(*s.item, prefix + "[]", rows);
      break;
    case Kind::kDict:
      if (s.item->kind == Kind::kMap) reference_rows(*s.item, prefix + ".NAME", rows);
      break;
    case Kind::kTagged:
      for (const auto& [tag, body] : s.tagged) reference_rows(*body, prefix + "." + tag, rows);
      break;
    default:
      break;
  }
}

}  // namespace

std::vector<KeyDoc> key_reference(const Schema& schema, const std::string& prefix) {
  std::vector<KeyDoc> rows;
  reference_rows(schema, prefix, rows);
  return rows;
}

std::string key_reference_markdown(const std::vector<KeyDoc>& rows) {
  const auto cell = [](std::string text) {
    std::string out;
    for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  };
  std::string out = "| key | takes | default | notes |\n|---|---|---|---|\n";
  for (const auto& r : rows) {
    out += "| `" + cell(r.key) + "` | " + cell(r.type) + " | " +
           (r.default_value == "required" || r.default_value == "—" ? r.default_value
                                                                    : "`" + cell(r.default_value) + "`") +
           " | " + cell(r.doc) + " |\n";
  }
  return out;
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    // The distance is at least the difference in length: a megabyte-long word costs nothing.
    if (c.size() + best_d <= word.size() || word.size() + best_d <= c.size()) continue;
    std::vector<size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= c.size(); ++j) {
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (word[i - 1] == c[j - 1] ? 0 : 1)});
      }
      std::swap(prev, cur);
    }
    if (prev[c.size()] < best_d) {
      best_d = prev[c.size()];
      best = c;
    }
  }
  return best;
}

}  // namespace shrink::config
