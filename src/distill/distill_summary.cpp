// Distillation's report entries both ways, their Markdown and HTML, and their readers.
#include "distill/distill_summary.h"

#include "core/error.h"
#include "core/format.h"
#include "core/registration.h"

namespace shrink::distill {

using core::cat;
using core::format_double;
using nlohmann::json;

json DistillSummary::to_json() const {
  json j = {{"teacher", teacher},           {"temperature", temperature},         {"alpha", alpha},
            {"objective", objective},       {"distilled_steps", distilled_steps}, {"teacher_passes", teacher_passes},
            {"cached_steps", cached_steps}, {"teacher_seconds", teacher_seconds}};
  if (!features.empty()) {
    json out = json::array();
    for (const auto& f : features) {
      out.push_back({{"student", f.student},
                     {"teacher", f.teacher},
                     {"distance", f.distance},
                     {"weight", f.weight},
                     {"adapter", f.adapter}});
    }
    j["features"] = out;
  }
  return j;
}

DistillSummary DistillSummary::from_json(const json& j) {
  DistillSummary s;
  s.teacher = j.at("teacher").get<std::string>();
  s.temperature = j.at("temperature").get<double>();
  s.alpha = j.at("alpha").get<double>();
  s.objective = j.value("objective", std::string("logits"));
  s.distilled_steps = j.at("distilled_steps").get<int64_t>();
  s.teacher_passes = j.at("teacher_passes").get<int64_t>();
  s.cached_steps = j.at("cached_steps").get<int64_t>();
  s.teacher_seconds = j.at("teacher_seconds").get<double>();
  for (const auto& f : j.value("features", json::array())) {
    s.features.push_back({f.at("student").get<std::string>(), f.at("teacher").get<std::string>(),
                          f.at("distance").get<std::string>(), f.at("weight").get<double>(),
                          f.at("adapter").get<bool>()});
  }
  return s;
}

std::string DistillSummary::markdown(const train::StageView& stage) const {
  std::string md = cat("\n## Distillation in stage ", stage.index, " (", stage.kind, " ", stage.model,
                       ")\n\n- teacher: `", teacher, "`\n- objective ", objective,
                       objective == "logits" ? cat(", temperature ", format_double("%g", temperature)) : std::string(),
                       ", alpha ", format_double("%g", alpha), "\n");
  for (const auto& f : features) {
    md += cat("- hint: student `", f.student, "` → teacher `", f.teacher, "` (", f.distance, ", weight ",
              format_double("%g", f.weight), f.adapter ? ", with adapter" : "", ")\n");
  }
  return md + cat("- teacher forward passes: ", teacher_passes, " (", format_double("%.1f", teacher_seconds),
                  " s); steps served from cached teacher logits: ", cached_steps, "\n");
}

json DistillationReport::to_json() const {
  json j = distill.to_json();
  j.erase("kind");
  if (teacher_accuracy) j["teacher_accuracy"] = *teacher_accuracy;
  if (alone_accuracy) j["student_alone_accuracy"] = *alone_accuracy;
  if (alone_training) j["student_alone_training"] = alone_training->to_json();
  return j;
}

DistillationReport DistillationReport::from_json(const json& j) {
  DistillationReport r;
  json record = j;
  for (const char* k : {"teacher_accuracy", "student_alone_accuracy", "student_alone_training"}) record.erase(k);
  record["kind"] = "distill";
  r.distill = train::ModifierRecord::from_json(record);
  if (j.contains("teacher_accuracy")) r.teacher_accuracy = j["teacher_accuracy"].get<double>();
  if (j.contains("student_alone_accuracy")) r.alone_accuracy = j["student_alone_accuracy"].get<double>();
  if (j.contains("student_alone_training"))
    r.alone_training = train::TrainingHistory::from_json(j["student_alone_training"]);
  return r;
}

std::string DistillationReport::markdown(const train::StageView& stage) const {
  const auto* summary = dynamic_cast<const DistillSummary*>(distill.summary.get());
  std::string md = cat("\n- teacher `", summary ? summary->teacher : std::string("?"), "` (stage ", stage.index, ")",
                       teacher_accuracy ? cat(": test accuracy ", format_double("%.4f", *teacher_accuracy)) : "", "\n");
  if (alone_accuracy) {
    md += cat("\n| student | test accuracy |\n|---|---|\n| trained alone (same weights, seed, batches) | ",
              format_double("%.4f", *alone_accuracy), " |\n| distilled | ", format_double("%.4f", stage.accuracy), " (",
              format_double("%+.2f", 100 * (stage.accuracy - *alone_accuracy)), " pt) |\n");
  }
  return md;
}

std::string DistillationReport::html(const train::StageView& stage) const {
  if (!alone_accuracy) return "";
  return cat("<h3>Distillation of stage ", core::html_escape(stage.name()),
             "</h3><table><tr><th>student</th><th>test accuracy</th></tr><tr><td>trained alone (same weights, seed, "
             "batches)</td><td>",
             format_double("%.4f", *alone_accuracy), "</td></tr><tr><td>distilled</td><td>",
             format_double("%.4f", stage.accuracy), " (",
             format_double("%+.2f", 100 * (stage.accuracy - *alone_accuracy)), " pt)</td></tr></table>\n");
}

train::ReportSection::Comparison DistillationReport::comparison() const {
  if (!alone_training) return {};
  return {"student alone", &*alone_training};
}

SHRINK_ON_LOAD(distill_report_readers) {
  train::register_summary_reader(
      "distill", [](const json& j) { return std::make_shared<DistillSummary>(DistillSummary::from_json(j)); });
  train::register_section_reader(DistillationReport::kKey, [](const json& j) {
    return std::make_shared<DistillationReport>(DistillationReport::from_json(j));
  });
}

}  // namespace shrink::distill
