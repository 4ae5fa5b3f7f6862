// Modifiers: training-time compressors (pruning, distillation, QAT) attached to one training run,
// each active over its own window of epochs. The Trainer calls them in the order they were added,
// at every point below; their state goes into its checkpoints and their fingerprints into its
// configuration digest, so a resumed run continues them exactly and a changed one is refused.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/blueprint.h"
#include "train/callback.h"
#include "train/report_section.h"

namespace shrink::train {

// [start_epoch, end_epoch) in epochs, fractions allowed; end_epoch < 0 = to the end of training.
struct Window {
  double start_epoch = 0.0;
  double end_epoch = -1.0;
  bool contains(double epoch) const { return epoch >= start_epoch && (end_epoch < 0 || epoch < end_epoch); }
};

// What a loss term sees of the step.
struct LossInputs {
  const at::Tensor& logits;
  const at::Tensor& inputs;
  const at::Tensor& targets;
  // The samples' positions in the training set (int64), or undefined when the caller's loop has
  // none; with them, per-sample results (a teacher's logits) can be computed once and reused.
  at::Tensor indices = {};
  // The same indices on the CPU when the caller has them (shrink's Trainer does): read on the host
  // without waiting for a GPU.
  at::Tensor host_indices = {};
};

// What a modifier reports after training: a typed struct per kind (PruneSummary, QatSummary,
// DistillSummary), whose key() is the modifier's kind.
class ModifierSummary : public ReportSection {
 public:
  // What it aimed at and what it reached, for the report's modifiers table ("" for nothing).
  virtual std::string target() const { return ""; }
  virtual std::string reached() const { return ""; }
  // Its scalar settings as (name, value) text, for the HTML modifiers table; by default the
  // scalar entries of to_json().
  virtual std::vector<std::pair<std::string, std::string>> settings() const;
  // Sections the modifier adds to its stage (QAT's conversion is the stage's quantization).
  virtual std::vector<std::shared_ptr<const ReportSection>> stage_sections() const { return {}; }
};

// A summary under a kind no linked code registered: its JSON kept as read.
class RawModifierSummary : public ModifierSummary {
 public:
  RawModifierSummary(std::string kind, nlohmann::json json) : kind_(std::move(kind)), json_(std::move(json)) {}
  std::string key() const override { return kind_; }
  nlohmann::json to_json() const override { return json_; }

 private:
  std::string kind_;
  nlohmann::json json_;
};

using SummaryReader = std::function<std::shared_ptr<const ModifierSummary>(const nlohmann::json& j)>;
// Registers the reader of a modifier kind's summary (a UsageError when taken).
void register_summary_reader(const std::string& kind, SummaryReader read);
// The registered reader's summary, else a RawModifierSummary.
std::shared_ptr<const ModifierSummary> read_summary(const std::string& kind, const nlohmann::json& j);

class Modifier;

// A modifier as a stage's report keeps it: its window and its summary (never null).
struct ModifierRecord {
  Window window;
  std::shared_ptr<const ModifierSummary> summary;

  std::string kind() const { return summary->key(); }
  // {"kind", "start_epoch", "end_epoch"} and the summary's entries.
  nlohmann::json to_json() const;
  static ModifierRecord from_json(const nlohmann::json& j);
  // After training: a modifier with no summary of its own gets an empty one under its name().
  static ModifierRecord of(const Modifier& modifier);
};

class Modifier : public TrainerCallback {
 public:
  // A short kind name for messages and reports ("prune", "distill", "qat").
  virtual std::string name() const = 0;
  virtual Window window() const { return {}; }
  // Everything that shapes the run, as text: part of the checkpoint fingerprint.
  virtual std::string fingerprint() const = 0;

  // Once, before the optimizer is built: the place to change the module's structure.
  virtual void prepare(torch::nn::Module& module) {}
  // Trainable tensors outside the module (adapters, learnable scales): the optimizer gets them.
  virtual std::vector<at::Tensor> extra_parameters() { return {}; }
  // The step's loss after this modifier: add a term, or mix with the incoming loss.
  virtual at::Tensor adjust_loss(const at::Tensor& loss, const LossInputs& in, const StepInfo& step) { return loss; }

  // Tensors outside the module that its forward passes change (QAT's observers and scales), by
  // name: data-parallel training keeps them as rank 0's with the module's buffers.
  virtual std::vector<std::pair<std::string, at::Tensor>> state_tensors() const { return {}; }
  // State that lives outside the module's parameters and buffers.
  virtual void save(torch::serialize::OutputArchive& archive) const {}
  virtual void load(torch::serialize::InputArchive& archive) {}

  // Once, after the last epoch (the recipe runner calls it; so does your own loop): a structural
  // change that ends training, such as QAT's conversion to int8 kernels.
  virtual void finish(models::Model& model) {}

  // The structural changes made to the module, so a file of it can be rebuilt (models/restore.h).
  virtual std::vector<models::Transform> transforms() const { return {}; }
  // What the report shows about this modifier after training; nullptr: nothing beyond its window.
  virtual std::shared_ptr<const ModifierSummary> summary() const { return nullptr; }
  // The summary as its own type (nullptr when it is another).
  template <class Summary>
  std::shared_ptr<const Summary> summary_as() const {
    return std::dynamic_pointer_cast<const Summary>(summary());
  }
};

}  // namespace shrink::train
