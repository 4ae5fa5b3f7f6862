// The run report: the shrink.report/1 JSON contract and its Markdown rendering.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "report/measure.h"
#include "train/history.h"
#include "train/modifier.h"
#include "train/report_section.h"

namespace shrink::report {

inline constexpr const char* kSchema = "shrink.report/1";

// How a model's outputs on the test set follow a reference model's, when the data has no labels
// (a text encoder's sentence embeddings against the model as brought or the teacher).
struct FidelityStat {
  std::string reference;  // the reference model's name in the recipe
  int64_t samples = 0;
  double mean_cosine = 0.0;
  double p5_cosine = 0.0;
  double min_cosine = 0.0;
  double spearman = 0.0;  // of the pairwise similarities (train/embedding_fidelity.h)
};

struct StageMetrics {
  double accuracy = 0.0;  // top-1 on the test set, in [0, 1]; 0 when the data has no labels
  double loss = 0.0;
  // Set, and accuracy and loss left 0, when the test set has no labels.
  std::optional<FidelityStat> fidelity;
  int64_t params = 0;
  int64_t nonzero_params = 0;
  double sparsity = 0.0;
  int64_t size_bytes = 0;  // the smallest exported file of the stage
  // FLOPs of one sample's forward pass (2 per multiply-add of its Conv2d and Linear layers,
  // models/cost.h); 0 when not counted (a TorchScript module, an older report).
  int64_t flops = 0;
  std::vector<LatencyStat> latency;
  std::vector<double> per_class_accuracy;
  // Test-set counts, rows = true class, columns = predicted; empty in older reports.
  std::vector<std::vector<int64_t>> confusion;
};

// One weight tensor's size and sparsity, for the per-layer table.
struct LayerStat {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int64_t nonzero = 0;
  double sparsity = 0.0;
};

// A stage's training curve: the one definition the JSON, Markdown, HTML and compare share.
using train::EpochPoint;
using train::TrainingHistory;

// `shrink sensitivity` for one model: accuracy with each tensor pruned alone at each level.
struct Sensitivity {
  std::string weights;
  std::string split;                  // "validation" or "test"
  std::string structure = "weights";  // or "channels": each layer's output channels pruned
  double baseline_accuracy = 0;
  std::vector<double> levels;
  std::vector<std::pair<std::string, std::vector<double>>> tensors;  // accuracy per level, file order
};

nlohmann::json to_json(const Sensitivity& sensitivity);
Sensitivity sensitivity_from_json(const nlohmann::json& j);

struct StageReport {
  int64_t index = 0;
  std::string kind;
  std::string model;
  double wall_s = 0.0;
  StageMetrics metrics;
  std::map<std::string, std::string> artifacts;  // format → path relative to the output folder
  std::vector<LayerStat> layers;                 // parameters of rank >= 2 (Linear, Conv weights)
  std::optional<TrainingHistory> training;       // stages that train
  // Stages that run modifiers (train, prune, distill) list them, even when there are none.
  std::optional<std::vector<train::ModifierRecord>> modifiers;
  // What else the stage reports (quantization, distillation), each under its own report.json key.
  std::vector<std::shared_ptr<const train::ReportSection>> sections;

  // The section of that type, or nullptr.
  template <class Section>
  const Section* section() const {
    for (const auto& s : sections) {
      if (const auto* typed = dynamic_cast<const Section*>(s.get())) return typed;
    }
    return nullptr;
  }
  train::StageView view() const { return {index, kind, model, metrics.accuracy}; }
};

inline constexpr const char* kLatencyOnTestSplit = "test split";
inline constexpr const char* kLatencyOnNoise = "N(0, 1) noise";

struct Report {
  struct RecipeInfo {
    std::string name, path, sha256;
    // The recipe as it ran (defaults filled, overrides applied) and the `--set` overrides given.
    nlohmann::json effective = nlohmann::json::object();
    std::vector<std::string> overrides;
  } recipe;
  struct Environment {
    std::string shrink_version, torch_version, device, cpu;
    int64_t threads = 0;
    // What the latency was timed on (measure_latency): kLatencyOnTestSplit, or kLatencyOnNoise
    // (a run whose data has no test samples, and every report of a shrink before 2026-12-07).
    std::string latency_inputs = kLatencyOnTestSplit;
  } environment;
  std::vector<StageReport> stages;
  // The models that started from a file (`models.NAME.init`), measured as brought, before any
  // stage: kind "initial", index -1, no artifacts (size_bytes is the file's).
  std::vector<StageReport> initial;
  std::vector<std::string> class_names;
  std::map<std::string, Sensitivity> sensitivity;  // by model name
};

nlohmann::json to_json(const Report& report);
// Throws an Error naming what is missing when `j` is not a shrink.report/1 document.
Report report_from_json(const nlohmann::json& j);
// The rows a report's tables list: the models as brought (`init`) first, then the stages.
std::vector<const StageReport*> listed_rows(const Report& report);
// A row's number in those tables: the stage index, "—" for a model as brought.
std::string row_number(const StageReport& row);
// FLOPs for tables: "12.3 M", or "—" when not counted.
std::string flops_text(int64_t flops);
std::string to_markdown(const Report& report);

// Writes report.json, report.md and report.html into `dir`, each atomically.
void write_report(const std::filesystem::path& dir, const Report& report);
Report read_report(const std::filesystem::path& json_path);

std::string cpu_model_name();
std::string torch_version();

}  // namespace shrink::report
