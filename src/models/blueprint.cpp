// Blueprint ↔ JSON (schema "shrink.model/1").
#include "models/blueprint.h"

#include "core/error.h"
#include "core/yaml_json.h"

namespace shrink::models {

using core::cat;

namespace {
constexpr const char* kSchema = "shrink.model/1";
}

nlohmann::json Blueprint::to_json() const {
  auto transforms_json = nlohmann::json::array();
  for (const auto& t : transforms) transforms_json.push_back({{"kind", t.kind}, {"settings", t.settings}});
  nlohmann::json j = {{"schema", kSchema},
                      {"arch", arch},
                      {"options", core::yaml_to_json(options)},
                      {"input", {{"shape", input.shape}, {"num_classes", input.num_classes}}},
                      {"transforms", transforms_json}};
  if (!data.is_null()) j["data"] = {{"spec", data}, {"base_dir", data_base_dir}, {"seed", data_seed}};
  return j;
}

Blueprint Blueprint::from_json(const nlohmann::json& j, const std::string& source) {
  try {
    if (j.value("schema", "") != kSchema) {
      throw core::Error(cat("model description has schema '", j.value("schema", ""), "', expected '", kSchema, "'"));
    }
    Blueprint b;
    b.arch = j.at("arch").get<std::string>();
    b.options = core::json_to_yaml(j.at("options"));
    if (!b.options.IsMap()) b.options = YAML::Node(YAML::NodeType::Map);
    b.input.shape = j.at("input").at("shape").get<std::vector<int64_t>>();
    b.input.num_classes = j.at("input").at("num_classes").get<int64_t>();
    for (const auto& t : j.at("transforms"))
      b.transforms.push_back({t.at("kind").get<std::string>(), t.at("settings")});
    if (j.contains("data")) {
      b.data = j["data"].at("spec");
      b.data_base_dir = j["data"].value("base_dir", "");
      b.data_seed = j["data"].value("seed", uint64_t{0});
    }
    return b;
  } catch (const nlohmann::json::exception& e) {
    throw core::Error(cat(source, ": malformed model description: ", e.what()));
  } catch (const core::Error& e) {
    throw core::Error(cat(source, ": ", e.what()));
  }
}

}  // namespace shrink::models
