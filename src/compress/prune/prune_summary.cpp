// PruneSummary's report.json entry and its reader.
#include "compress/prune/prune_summary.h"

#include "core/error.h"
#include "core/format.h"
#include "core/registration.h"

namespace shrink::compress::prune {

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
  return out;
}

PruneSummary PruneSummary::from_json(const json& j) {
  PruneSummary s;
  s.method = j.at("method").get<std::string>();
  // Reports written before channel pruning existed pruned single weights.
  s.structure = j.value("structure", std::string("weights"));
  s.flops_target = j.value("flops_target", 0.0);
  s.flops_sparsity = j.value("flops_sparsity", 0.0);
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

std::string PruneSummary::target() const { return core::format_double("%.3f", target_sparsity); }
std::string PruneSummary::reached() const { return core::format_double("%.3f", sparsity); }

SHRINK_ON_LOAD(prune_summary_reader) {
  train::register_summary_reader(
      "prune", [](const json& j) { return std::make_shared<PruneSummary>(PruneSummary::from_json(j)); });
}

}  // namespace shrink::compress::prune
