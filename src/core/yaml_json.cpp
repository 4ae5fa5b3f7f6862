// YAML ↔ JSON conversion.
#include "core/yaml_json.h"

#include <cmath>

namespace shrink::core {

namespace {

nlohmann::json scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted in the YAML: a string whatever it looks like
  long long i;
  if (YAML::convert<long long>::decode(n, i)) return i;
  double d;
  if (YAML::convert<double>::decode(n, d) && std::isfinite(d)) return d;
  if (s == "true" || s == "false") return s == "true";
  return s;
}

}  // namespace

nlohmann::json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return scalar(node);
    case YAML::NodeType::Sequence: {
      auto out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      auto out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.Scalar()] = yaml_to_json(kv.second);
      return out;
    }
    default:
      return nullptr;
  }
}

YAML::Node json_to_yaml(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object: {
      YAML::Node out(YAML::NodeType::Map);
      for (const auto& [k, v] : value.items()) out[k] = json_to_yaml(v);
      return out;
    }
    case nlohmann::json::value_t::array: {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& v : value) out.push_back(json_to_yaml(v));
      return out;
    }
    case nlohmann::json::value_t::string:
      return YAML::Node(value.get<std::string>());
    case nlohmann::json::value_t::boolean:
      return YAML::Node(value.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return YAML::Node(value.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return YAML::Node(value.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return YAML::Node(value.get<double>());
    default:
      return YAML::Node(YAML::NodeType::Null);
  }
}

}  // namespace shrink::core
