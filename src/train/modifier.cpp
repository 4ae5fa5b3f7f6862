// Modifier summaries: their default settings text, their readers, and the records reports keep.
#include "train/modifier.h"

#include "core/keyed_registry.h"

namespace shrink::train {

using nlohmann::json;

std::vector<std::pair<std::string, std::string>> ModifierSummary::settings() const {
  std::vector<std::pair<std::string, std::string>> out;
  const json j = to_json();  // items() must not outlive the object it walks
  for (const auto& [k, v] : j.items()) {
    // Per-layer lists belong to the sparsity chart, not a table cell; the window has its column.
    if (v.is_primitive() && k != "start_epoch" && k != "end_epoch") out.emplace_back(k, v.dump());
  }
  return out;
}

namespace {

core::KeyedRegistry<SummaryReader>& summary_readers() {
  static core::KeyedRegistry<SummaryReader> r("modifier summary");
  return r;
}

}  // namespace

void register_summary_reader(const std::string& kind, SummaryReader read) {
  summary_readers().add(kind, std::move(read));
}

std::shared_ptr<const ModifierSummary> read_summary(const std::string& kind, const json& j) {
  const auto read = summary_readers().find(kind);
  return read ? (*read)(j) : std::make_shared<RawModifierSummary>(kind, j);
}

json ModifierRecord::to_json() const {
  json j = {{"kind", kind()}, {"start_epoch", window.start_epoch}, {"end_epoch", window.end_epoch}};
  const json own = summary->to_json();
  for (const auto& [k, v] : own.items()) j[k] = v;
  return j;
}

ModifierRecord ModifierRecord::from_json(const json& j) {
  ModifierRecord r;
  r.window = {j.at("start_epoch").get<double>(), j.at("end_epoch").get<double>()};
  json rest = j;
  rest.erase("kind");
  r.summary = read_summary(j.at("kind").get<std::string>(), rest);
  return r;
}

ModifierRecord ModifierRecord::of(const Modifier& modifier) {
  ModifierRecord r;
  r.window = modifier.window();
  r.summary = modifier.summary();
  if (!r.summary) r.summary = std::make_shared<RawModifierSummary>(modifier.name(), json::object());
  return r;
}

}  // namespace shrink::train
