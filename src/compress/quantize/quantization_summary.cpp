// QuantizationSummary: report.json entry both ways, Markdown and HTML sections, its reader.
#include "compress/quantize/quantization_summary.h"

#include "core/error.h"
#include "core/format.h"
#include "core/registration.h"

namespace shrink::compress::quantize {

using core::cat;
using nlohmann::json;

json observer_json(const ObserverOptions& o) {
  json j = {{"kind", core::name_of(o.kind())},
            {"dtype", core::name_of(o.dtype())},
            {"symmetric", o.symmetric()},
            {"per_channel", o.per_channel()},
            {"reduce_range", o.reduce_range()}};
  if (o.kind() == ObserverKind::kMovingAverage) j["averaging_constant"] = o.averaging_constant();
  if (keeps_histogram(o.kind())) j["bins"] = o.bins();
  if (o.kind() == ObserverKind::kPercentile) j["percentile"] = o.percentile();
  return j;
}

ObserverOptions observer_from_json(const json& j) {
  ObserverOptions o;
  o.kind(core::enum_from_name<ObserverKind>(j.at("kind").get<std::string>(), "observer kind"));
  o.dtype(core::enum_from_name<QDtype>(j.at("dtype").get<std::string>(), "observer dtype"));
  o.symmetric(j.at("symmetric").get<bool>());
  o.per_channel(j.at("per_channel").get<bool>());
  o.reduce_range(j.at("reduce_range").get<bool>());
  if (j.contains("averaging_constant")) o.averaging_constant(j["averaging_constant"].get<double>());
  if (j.contains("bins")) o.bins(j["bins"].get<int64_t>());
  if (j.contains("percentile")) o.percentile(j["percentile"].get<double>());
  return o;
}

json QuantizationSummary::to_json() const {
  json floats = json::array();
  for (const auto& f : float_layers) floats.push_back({{"layer", f.layer}, {"reason", f.reason}});
  json j = {{"method", method},
            {"backend", backend},
            {"int8_layers", int8_layers},
            {"float_layers", floats},
            {"device", device}};
  if (!kernels.empty()) j["kernels"] = kernels;
  if (weights) j["weights"] = observer_json(*weights);
  if (activations) j["activations"] = observer_json(*activations);
  if (calibration_samples) j["calibration_samples"] = *calibration_samples;
  return j;
}

QuantizationSummary QuantizationSummary::from_json(const json& j) {
  QuantizationSummary q;
  q.method = j.at("method").get<std::string>();
  q.backend = j.at("backend").get<std::string>();
  q.int8_layers = j.at("int8_layers").get<std::vector<std::string>>();
  for (const auto& f : j.at("float_layers"))
    q.float_layers.push_back({f.at("layer").get<std::string>(), f.at("reason").get<std::string>()});
  q.device = j.value("device", std::string("cpu"));
  q.kernels = j.value("kernels", std::string());
  if (j.contains("weights")) q.weights = observer_from_json(j["weights"]);
  if (j.contains("activations")) q.activations = observer_from_json(j["activations"]);
  if (j.contains("calibration_samples")) q.calibration_samples = j["calibration_samples"].get<int64_t>();
  return q;
}

std::string QuantizationSummary::markdown(const train::StageView& stage) const {
  std::string md = cat("\n## Quantization of stage ", stage.index, " (", stage.kind, " ", stage.model,
                       ")\n\n- method: ", method, ", engine: ", backend,
                       kernels.empty() || kernels == backend ? "" : cat(" (LibTorch's ", kernels, " kernels)"),
                       ", runs on: ", device, "\n");
  if (calibration_samples) md += cat("- calibration: ", *calibration_samples, " samples\n");
  md += cat("- int8 layers (", int8_layers.size(), "): ", int8_layers.empty() ? "none" : core::join(int8_layers), "\n");
  for (const auto& f : float_layers) md += cat("- kept float: ", f.layer, " (", f.reason, ")\n");
  return md;
}

std::string QuantizationSummary::html(const train::StageView& stage) const {
  std::string out =
      cat("<h3>Quantization of stage ", core::html_escape(stage.name()), "</h3><p>method ", core::html_escape(method),
          ", engine ", core::html_escape(backend), ", runs on ", core::html_escape(device),
          "; int8 layers: ", core::html_escape(int8_layers.empty() ? "none" : core::join(int8_layers)));
  for (const auto& f : float_layers)
    out += cat("; kept float: ", core::html_escape(f.layer), " (", core::html_escape(f.reason), ")");
  return out + "</p>\n";
}

SHRINK_ON_LOAD(quantization_section_reader) {
  train::register_section_reader(QuantizationSummary::kKey, [](const json& j) {
    return std::make_shared<QuantizationSummary>(QuantizationSummary::from_json(j));
  });
}

}  // namespace shrink::compress::quantize
