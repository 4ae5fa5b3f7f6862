// Model spec schema: `arch` selects the architecture, whose options follow.
#include "recipe/model_spec.h"

namespace shrink::recipe {

SchemaPtr model_schema() {
  const auto sizes = list_of(integer(1), 1);
  auto kernel = std::make_shared<Schema>(*integer(1, 15));
  kernel->check = [](const YAML::Node& n) {
    return n.as<int64_t>() % 2 == 1 ? "" : "expected an odd kernel size (same padding needs one)";
  };
  return tagged_map({required("arch", one_of(models::architectures()))}, "arch",
                    {{"mlp",
                      {with_default_node("hidden", sizes, YAML::Load("[300, 100]")),
                       with_default("batch_norm", boolean(), false),
                       with_default("dropout", number(0, 0.99), 0.0)}},
                     {"lenet5", {}},
                     {"convnet",
                      {with_default_node("channels", sizes, YAML::Load("[32, 64]")),
                       with_default("kernel_size", kernel, 3),
                       with_default_node("fc", list_of(integer(1)), YAML::Load("[128]")),
                       with_default("batch_norm", boolean(), true),
                       with_default("dropout", number(0, 0.99), 0.0)}}});
}

models::ModelOptions parse_model(const YAML::Node& n) {
  const std::string arch = n["arch"].as<std::string>();
  if (arch == "mlp") {
    return models::MlpOptions()
        .hidden(n["hidden"].as<std::vector<int64_t>>())
        .batch_norm(n["batch_norm"].as<bool>())
        .dropout(n["dropout"].as<double>());
  }
  if (arch == "lenet5") return models::LeNet5Options();
  return models::ConvNetOptions()
      .channels(n["channels"].as<std::vector<int64_t>>())
      .kernel_size(n["kernel_size"].as<int64_t>())
      .fc(n["fc"].as<std::vector<int64_t>>())
      .batch_norm(n["batch_norm"].as<bool>())
      .dropout(n["dropout"].as<double>());
}

}  // namespace shrink::recipe
