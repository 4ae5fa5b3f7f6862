// What distillation reports: the distill modifier's summary (teacher, KD settings, hints, teacher
// passes), and the distill stage's section beside it (the teacher's accuracy and, with a baseline,
// the student trained alone).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/history.h"
#include "train/modifier.h"

namespace shrink::distill {

struct FeatureSummary {
  std::string student, teacher, distance;
  double weight = 1.0;
  bool adapter = false;  // an adapter maps the student's width to the teacher's
};

struct DistillSummary : train::ModifierSummary {
  std::string teacher;  // a recipe model's name or a file's path
  double temperature = 0, alpha = 0;
  std::string objective = "logits";  // logits | cosine | mse (reports before it: logits)
  int64_t distilled_steps = 0, teacher_passes = 0, cached_steps = 0;
  double teacher_seconds = 0;
  std::vector<FeatureSummary> features;

  std::string key() const override { return "distill"; }
  nlohmann::json to_json() const override;
  static DistillSummary from_json(const nlohmann::json& j);
  std::string markdown(const train::StageView& stage) const override;
};

// The distill stage's "distillation" section.
struct DistillationReport : train::ReportSection {
  train::ModifierRecord distill;           // its summary a DistillSummary
  std::optional<double> teacher_accuracy;  // on the stage's test data; none when it has no labels
  // baseline: the student trained from the same weights, seed and batches without the teacher.
  std::optional<double> alone_accuracy;
  std::optional<train::TrainingHistory> alone_training;

  static constexpr const char* kKey = "distillation";
  std::string key() const override { return kKey; }
  nlohmann::json to_json() const override;
  static DistillationReport from_json(const nlohmann::json& j);
  std::string markdown(const train::StageView& stage) const override;
  std::string html(const train::StageView& stage) const override;
  Comparison comparison() const override;
};

}  // namespace shrink::distill
