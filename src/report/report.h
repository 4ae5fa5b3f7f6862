// The run report: the shrink.report/1 JSON contract and its Markdown rendering.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "report/measure.h"

namespace shrink::report {

inline constexpr const char* kSchema = "shrink.report/1";

struct StageMetrics {
  double accuracy = 0.0;  // top-1 on the test set, in [0, 1]
  double loss = 0.0;
  int64_t params = 0;
  int64_t nonzero_params = 0;
  double sparsity = 0.0;
  int64_t size_bytes = 0;  // the smallest exported file of the stage
  std::vector<LatencyStat> latency;
  std::vector<double> per_class_accuracy;
};

// One weight tensor's size and sparsity, for the per-layer table.
struct LayerStat {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int64_t nonzero = 0;
  double sparsity = 0.0;
};

struct StageReport {
  int64_t index = 0;
  std::string kind;
  std::string model;
  double wall_s = 0.0;
  StageMetrics metrics;
  std::map<std::string, std::string> artifacts;  // format → path relative to the output folder
  std::vector<LayerStat> layers;                 // parameters of rank >= 2 (Linear, Conv weights)
  // Stage-specific additions (e.g. the training history); keys never collide with the above.
  nlohmann::json details = nlohmann::json::object();
};

struct Report {
  struct RecipeInfo {
    std::string name, path, sha256;
  } recipe;
  struct Environment {
    std::string shrink_version, torch_version, device, cpu;
    int64_t threads = 0;
  } environment;
  std::vector<StageReport> stages;
  std::vector<std::string> class_names;
  // `shrink sensitivity` results by model name: {baseline_accuracy, levels, tensors: {name: [acc...]}}.
  nlohmann::json sensitivity = nlohmann::json::object();
};

nlohmann::json to_json(const Report& report);
// Throws an Error naming what is missing when `j` is not a shrink.report/1 document.
Report report_from_json(const nlohmann::json& j);
std::string to_markdown(const Report& report);

// Writes report.json and report.md into `dir`, each atomically.
void write_report(const std::filesystem::path& dir, const Report& report);
Report read_report(const std::filesystem::path& json_path);

std::string cpu_model_name();
std::string torch_version();

}  // namespace shrink::report
