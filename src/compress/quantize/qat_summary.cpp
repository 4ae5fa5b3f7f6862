// QatSummary: report.json entry both ways, the stage's quantization section, its reader.
#include "compress/quantize/qat_summary.h"

#include "core/registration.h"

namespace shrink::compress::quantize {

using nlohmann::json;

json QatSummary::to_json() const {
  json j = {{"backend", backend},
            {"weights", observer_json(weights)},
            {"activations", observer_json(activations)},
            {"freeze_observers_epoch", freeze_observers_epoch},
            {"freeze_bn_epoch", freeze_bn_epoch},
            {"learnable_scales", learnable_scales},
            {"groups", groups},
            {"converted", int8_layers.has_value()}};
  if (int8_layers) {
    json floats = json::array();
    for (const auto& f : float_layers) floats.push_back({{"layer", f.layer}, {"reason", f.reason}});
    j["int8_layers"] = *int8_layers;
    j["float_layers"] = floats;
  }
  return j;
}

QatSummary QatSummary::from_json(const json& j) {
  QatSummary s;
  s.backend = j.at("backend").get<std::string>();
  s.weights = observer_from_json(j.at("weights"));
  s.activations = observer_from_json(j.at("activations"));
  s.freeze_observers_epoch = j.at("freeze_observers_epoch").get<double>();
  s.freeze_bn_epoch = j.at("freeze_bn_epoch").get<double>();
  s.learnable_scales = j.at("learnable_scales").get<bool>();
  s.groups = j.at("groups").get<int64_t>();
  if (j.at("converted").get<bool>()) {
    s.int8_layers = j.at("int8_layers").get<std::vector<std::string>>();
    for (const auto& f : j.at("float_layers"))
      s.float_layers.push_back({f.at("layer").get<std::string>(), f.at("reason").get<std::string>()});
  }
  return s;
}

std::vector<std::shared_ptr<const train::ReportSection>> QatSummary::stage_sections() const {
  if (!int8_layers) return {};
  auto q = std::make_shared<QuantizationSummary>();
  q->method = key();
  q->backend = backend;
  q->int8_layers = *int8_layers;
  q->float_layers = float_layers;
  return {q};
}

SHRINK_ON_LOAD(qat_summary_reader) {
  train::register_summary_reader("qat",
                                 [](const json& j) { return std::make_shared<QatSummary>(QatSummary::from_json(j)); });
}

}  // namespace shrink::compress::quantize
