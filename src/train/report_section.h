// Typed parts of a stage's report, contributed by what ran in the stage (a modifier's summary, a
// quantization, a distillation): each knows its report.json entry both ways and its Markdown and
// HTML, and registers a reader under its key, so the report layer names no compressor.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "train/history.h"

namespace shrink::train {

// The stage a section is rendered for.
struct StageView {
  int64_t index = 0;
  std::string kind, model;
  double accuracy = 0;  // the stage's test accuracy
  // "2 quantize convnet", as headings name a stage.
  std::string name() const { return std::to_string(index) + " " + kind + " " + model; }
};

class ReportSection {
 public:
  virtual ~ReportSection() = default;
  // The stage's report.json key it is stored under ("quantization"); a modifier summary's is its
  // modifier kind ("prune").
  virtual std::string key() const = 0;
  virtual nlohmann::json to_json() const = 0;
  // A section of its own in report.md and report.html (a heading and what follows); "" for none.
  virtual std::string markdown(const StageView& stage) const { return ""; }
  virtual std::string html(const StageView& stage) const { return ""; }
  // Another run of the stage's model to draw on its accuracy chart (a distilled student's control).
  struct Comparison {
    std::string label;
    const TrainingHistory* history = nullptr;
  };
  virtual Comparison comparison() const { return {}; }
};

// A section under a key no linked code registered (a newer shrink's, or a plug-in not linked here):
// its JSON kept as read, so a report read and written again loses nothing.
class RawSection : public ReportSection {
 public:
  RawSection(std::string key, nlohmann::json json) : key_(std::move(key)), json_(std::move(json)) {}
  std::string key() const override { return key_; }
  nlohmann::json to_json() const override { return json_; }

 private:
  std::string key_;
  nlohmann::json json_;
};

using SectionReader = std::function<std::shared_ptr<const ReportSection>(const nlohmann::json& j)>;
// Registers the reader of a stage-level key (a UsageError when taken), from the section's own file.
void register_section_reader(const std::string& key, SectionReader read);
// The registered reader's section, else a RawSection; a reader's json exceptions propagate.
std::shared_ptr<const ReportSection> read_section(const std::string& key, const nlohmann::json& j);

}  // namespace shrink::train
