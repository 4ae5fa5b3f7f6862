// Override parsing and application.
#include "recipe/overrides.h"

#include "core/error.h"

namespace shrink::recipe {

using core::cat;

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool parse_index(const std::string& s, size_t& out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 9) return false;
  out = std::stoul(s);
  return true;
}

}  // namespace

Override parse_override(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw core::UsageError(cat("--set expects key.path=value, got '", arg, "'"));
  }
  Override o{arg.substr(0, eq), arg.substr(eq + 1)};
  for (const auto& part : split_path(o.path)) {
    if (part.empty()) throw core::UsageError(cat("--set ", arg, ": empty segment in key path '", o.path, "'"));
  }
  return o;
}

void apply_override(YAML::Node root, const Override& o) {
  YAML::Node value;
  try {
    value = YAML::Load(o.value);
  } catch (const YAML::Exception& e) {
    throw core::UsageError(cat("--set ", o.path, "=", o.value, ": value is not valid YAML: ", e.msg));
  }
  const auto parts = split_path(o.path);
  YAML::Node cur = root;
  std::string walked;
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const std::string& part = parts[i];
    const std::string here = walked.empty() ? part : walked + "." + part;
    if (cur.IsSequence()) {
      size_t index = 0;
      if (!parse_index(part, index)) {
        throw core::UsageError(
            cat("--set ", o.path, ": '", walked, "' is a list; expected an index, got '", part, "'"));
      }
      if (index > cur.size() || (index == cur.size() && !last)) {
        throw core::UsageError(cat("--set ", o.path, ": index ", index, " is out of range ('", walked, "' has ",
                                   cur.size(), " item", cur.size() == 1 ? "" : "s", ")"));
      }
      if (last) {
        if (index == cur.size()) {
          cur.push_back(value);
        } else {
          cur[index] = value;
        }
        return;
      }
      YAML::Node next = cur[index];
      cur.reset(next);
    } else {
      if (cur.IsScalar()) {
        throw core::UsageError(cat("--set ", o.path, ": '", walked, "' is a value, not a map"));
      }
      if (last) {
        cur[part] = value;
        return;
      }
      if (!cur[part]) cur[part] = YAML::Node(YAML::NodeType::Map);
      YAML::Node next = cur[part];
      cur.reset(next);
    }
    walked = here;
  }
}

}  // namespace shrink::recipe
