// PruneSummary's report.json entry and its reader.
#include "compress/prune/prune_summary.h"

#include "core/error.h"
#include "core/format.h"
#include "core/registration.h"

namespace shrink::compress::prune {

using core::cat;
using nlohmann::json;

json PruneSummary::to_json() const {
  json layers_json = json::array();
  for (const auto& l : layers) {
    json layer{{"name", l.name},       {"shape", l.shape},   {"numel", l.numel},
               {"nonzero", l.nonzero}, {"target", l.target}, {"sparsity", l.sparsity}};
    if (l.channels > 0) {
      layer["channels"] = l.channels;
      layer["kept_channels"] = l.kept_channels;
    }
    layers_json.push_back(std::move(layer));
  }
  json skipped_json = json::array();
  for (const auto& s : skipped) skipped_json.push_back({{"layer", s.layer}, {"reason", s.reason}});
  json out = {{"method", method},
              {"structure", structure},
              {"skipped", skipped_json},
              {"scope", scope},
              {"target", target_sparsity},
              {"schedule", schedule},
              {"start_epoch", window.start_epoch},
              {"end_epoch", window.end_epoch},
              {"sparsity", sparsity},
              {"layers", layers_json}};
  if (flops_target > 0) {
    out["flops_target"] = flops_target;
    out["flops_sparsity"] = flops_sparsity;
  }
  if (!pattern.empty()) out["pattern"] = pattern;
  if (params_target > 0) {
    out["params_target"] = params_target;
    out["params_sparsity"] = params_sparsity;
  }
  if (latency_target_ms > 0) {
    out["latency_target_ms"] = latency_target_ms;
    out["latency_sparsity"] = latency_sparsity;
    out["latency_batch"] = latency_batch;
    out["dense_latency_ms"] = dense_latency_ms;
    out["pruned_latency_ms"] = pruned_latency_ms;
  }
  return out;
}

PruneSummary PruneSummary::from_json(const json& j) {
  PruneSummary s;
  s.method = j.at("method").get<std::string>();
  // Reports written before channel pruning existed pruned single weights.
  s.structure = j.value("structure", std::string("weights"));
  s.flops_target = j.value("flops_target", 0.0);
  s.flops_sparsity = j.value("flops_sparsity", 0.0);
  s.params_target = j.value("params_target", 0.0);
  s.pattern = j.value("pattern", std::string());
  s.params_sparsity = j.value("params_sparsity", 0.0);
  s.latency_target_ms = j.value("latency_target_ms", 0.0);
  s.latency_sparsity = j.value("latency_sparsity", 0.0);
  s.latency_batch = j.value("latency_batch", int64_t{1});
  s.dense_latency_ms = j.value("dense_latency_ms", 0.0);
  s.pruned_latency_ms = j.value("pruned_latency_ms", 0.0);
  for (const auto& k : j.value("skipped", json::array())) {
    s.skipped.push_back({k.at("layer").get<std::string>(), k.at("reason").get<std::string>()});
  }
  s.scope = j.at("scope").get<std::string>();
  s.target_sparsity = j.at("target").get<double>();
  s.schedule = j.at("schedule").get<std::string>();
  s.window = {j.at("start_epoch").get<double>(), j.at("end_epoch").get<double>()};
  s.sparsity = j.at("sparsity").get<double>();
  for (const auto& l : j.at("layers")) {
    s.layers.push_back({l.at("name").get<std::string>(), l.at("shape").get<std::vector<int64_t>>(),
                        l.at("numel").get<int64_t>(), l.at("nonzero").get<int64_t>(), l.at("target").get<double>(),
                        l.at("sparsity").get<double>(), l.value("channels", int64_t{0}),
                        l.value("kept_channels", int64_t{0})});
  }
  return s;
}

std::string PruneSummary::target() const {
  return core::format_double("%.3f", target_sparsity) + (pattern.empty() ? "" : " (" + pattern + ")");
}
std::string PruneSummary::reached() const { return core::format_double("%.3f", sparsity); }

namespace {

std::string layer_of(const std::string& weight) {
  const std::string suffix = ".weight";
  const bool ends =
      weight.size() > suffix.size() && weight.compare(weight.size() - suffix.size(), suffix.size(), suffix) == 0;
  return ends ? weight.substr(0, weight.size() - suffix.size()) : weight;
}

// What a cost target asked for and the ratio it chose, or "" without one.
std::string cost_target_line(const PruneSummary& s) {
  if (s.flops_target > 0) {
    return cat("FLOPs target ", core::format_double("%g", s.flops_target), " of the dense model's: each layer keeps ",
               core::format_double("%.3f", 1 - s.flops_sparsity), " of its channels");
  }
  if (s.params_target > 0) {
    return cat("parameter target ", core::format_double("%g", s.params_target),
               " of the dense model's weights: each layer keeps ", core::format_double("%.3f", 1 - s.params_sparsity),
               " of its channels");
  }
  if (s.latency_target_ms > 0) {
    return cat("latency target ", core::format_double("%g", s.latency_target_ms), " ms at batch ", s.latency_batch,
               ": each layer keeps ", core::format_double("%.3f", 1 - s.latency_sparsity), " of its channels (timed ",
               core::format_double("%.3f", s.pruned_latency_ms), " ms there, the dense model ",
               core::format_double("%.3f", s.dense_latency_ms), " ms)");
  }
  return "";
}

}  // namespace

std::string PruneSummary::markdown(const train::StageView& stage) const {
  if (structure != "channels") return "";
  std::string md = cat("\n## Channels pruned in stage ", stage.name(), "\n\n");
  if (const auto line = cost_target_line(*this); !line.empty()) md += line + "\n\n";
  md += "| layer | channels | kept | removed |\n|---|---|---|---|\n";
  for (const auto& l : layers) {
    if (l.channels == 0) continue;
    md += cat("| ", layer_of(l.name), " | ", l.channels, " | ", l.kept_channels, " | ",
              core::format_double("%.1f%%", 100.0 * static_cast<double>(l.channels - l.kept_channels) /
                                                static_cast<double>(l.channels)),
              " |\n");
  }
  if (!skipped.empty()) {
    md += "\nLeft whole:\n\n";
    for (const auto& k : skipped) md += cat("- `", k.layer, "`: ", k.reason, "\n");
  }
  return md;
}

std::string PruneSummary::html(const train::StageView& stage) const {
  if (structure != "channels") return "";
  std::string out = cat("<h3>Channels pruned in stage ", core::html_escape(stage.name()), "</h3>\n");
  if (const auto line = cost_target_line(*this); !line.empty()) out += cat("<p>", core::html_escape(line), "</p>\n");
  out += "<table><tr><th>layer</th><th>channels</th><th>kept</th><th>removed</th></tr>";
  for (const auto& l : layers) {
    if (l.channels == 0) continue;
    out += cat("<tr><td>", core::html_escape(layer_of(l.name)), "</td><td>", l.channels, "</td><td>", l.kept_channels,
               "</td><td>",
               core::format_double("%.1f%%", 100.0 * static_cast<double>(l.channels - l.kept_channels) /
                                                 static_cast<double>(l.channels)),
               "</td></tr>");
  }
  out += "</table>\n";
  if (!skipped.empty()) {
    out += "<p>Left whole:</p><ul>";
    for (const auto& k : skipped) {
      out += cat("<li><code>", core::html_escape(k.layer), "</code>: ", core::html_escape(k.reason), "</li>");
    }
    out += "</ul>\n";
  }
  return out;
}

SHRINK_ON_LOAD(prune_summary_reader) {
  train::register_summary_reader(
      "prune", [](const json& j) { return std::make_shared<PruneSummary>(PruneSummary::from_json(j)); });
}

}  // namespace shrink::compress::prune
