// `shrink compare`: every stage of several runs side by side, Δ against a baseline, and the
// accuracy-vs-size, accuracy-vs-FLOPs and accuracy-vs-latency Pareto frontiers; Markdown, JSON and HTML.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "report/report.h"

namespace shrink::report {

inline constexpr const char* kCompareSchema = "shrink.compare/1";

struct ComparedRun {
  std::string label;   // the recipe name, made unique with the folder name when two runs share it
  std::string source;  // the report.json it came from
  Report report;
};

// One stage of one run: a model a user could ship.
struct CompareRow {
  size_t run = 0;        // index into Comparison::runs
  size_t stage = 0;      // index into that run's report stages (or its initial models)
  bool initial = false;  // a model as brought (`init`), before the run's stages
  int environment = 0;   // index into Comparison::environments
  double delta_pt = 0;   // quality − the baseline's, in points (Comparison::quality)
  double ratio = 0;      // baseline size / this size
  bool size_front = false;
  bool flops_front = false;               // among the rows whose FLOPs were counted
  std::map<int64_t, bool> latency_front;  // by batch size
};

struct Comparison {
  std::vector<ComparedRun> runs;
  std::vector<CompareRow> rows;
  size_t baseline = 0;           // row index
  std::vector<int64_t> batches;  // every latency batch size any row has
  // Distinct (cpu, threads, device, shrink, LibTorch) tuples; more than one means latencies were
  // measured under different conditions.
  std::vector<Report::Environment> environments;
  // What ranks the rows: test accuracy, or for runs on data without labels, the mean cosine of a
  // model's embeddings to its run's reference (every row one or every row the other).
  bool by_fidelity = false;
  double quality(const StageReport& s) const {
    return by_fidelity ? s.metrics.fidelity->mean_cosine : s.metrics.accuracy;
  }
  const char* quality_name() const { return by_fidelity ? "mean cosine" : "accuracy"; }

  const StageReport& stage(const CompareRow& row) const {
    const auto& rep = runs.at(row.run).report;
    return row.initial ? rep.initial.at(row.stage) : rep.stages.at(row.stage);
  }
};

// Reads RUN_OR_REPORT arguments: a run folder (its report.json) or a report.json path. Throws an
// Error naming the path that is neither.
ComparedRun load_compared_run(const std::filesystem::path& path);

// `baseline` is a row index (rows are runs in order, stages in order); a UsageError when out of range.
Comparison compare(std::vector<ComparedRun> runs, size_t baseline = 0);

std::string to_markdown(const Comparison& c);
nlohmann::json to_json(const Comparison& c);
std::string to_html(const Comparison& c);

// Writes compare.md, compare.json and compare.html into `dir`, each atomically.
void write_comparison(const std::filesystem::path& dir, const Comparison& c);

}  // namespace shrink::report
