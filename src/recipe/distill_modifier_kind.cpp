// Distill modifier: recipe body → DistillOptions + teacher → a DistillModifier.
#include "recipe/distill_modifier_kind.h"

#include <algorithm>

#include "core/error.h"
#include "core/format.h"
#include "models/feature_capture.h"
#include "models/restore.h"

namespace shrink::recipe {

using core::cat;
using core::join;

DistillPlan::DistillPlan(std::string teacher, std::string teacher_file, distill::DistillOptions options)
    : teacher_(std::move(teacher)), teacher_file_(std::move(teacher_file)), options_(std::move(options)) {
  distill::validate(options_.kd());
  if (teacher_.empty() == teacher_file_.empty()) {
    throw core::UsageError("give the teacher as `teacher` (a model of this recipe) or `teacher_file`, not both or neither");
  }
}

void DistillPlan::check(torch::nn::Module& student) const {
  const auto layers = models::capturable_layers(student.shared_from_this());
  for (const auto& f : options_.features()) {
    if (std::find(layers.begin(), layers.end(), f.student()) == layers.end()) {
      throw core::UsageError(cat("features: the student has no layer '", f.student(), "'; its layers are: ", join(layers)));
    }
  }
}

void DistillPlan::check_epochs(int64_t epochs, const std::string& run) const {
  if (options_.start_epoch() >= static_cast<double>(epochs)) {
    throw core::UsageError(cat("start_epoch (", options_.start_epoch(), ") must fall inside the ", run));
  }
}

models::Model DistillPlan::teacher(const ModelSlot& student, StageContext& ctx) const {
  models::Model teacher;
  if (!teacher_file_.empty()) {
    if (!restored_) restored_ = models::restore_model(teacher_file_).model;
    teacher = *restored_;
  } else {
    const auto it = ctx.models->find(teacher_);
    if (it == ctx.models->end()) throw core::UsageError(cat("distill: no model '", teacher_, "' in the recipe"));
    if (&it->second == &student) throw core::UsageError(cat("distill: model '", teacher_, "' cannot teach itself"));
    teacher = it->second.model;
  }
  teacher.module->to(ctx.device);
  return teacher;
}

std::shared_ptr<train::Modifier> DistillPlan::attach(ModelSlot& slot, StageContext& ctx) const {
  const auto t = teacher(slot, ctx);
  if (options_.features().empty()) return std::make_shared<distill::DistillModifier>(t, teacher_name(), options_);
  // A few training samples size the adapters (one no-grad pass of both models).
  const auto& train = ctx.data->train.inputs;
  return std::make_shared<distill::DistillModifier>(t, teacher_name(), options_, slot.model,
                                                    train.narrow(0, 0, std::min<int64_t>(train.size(0), 2)));
}

namespace {

std::vector<Field> feature_fields() {
  return {
      documented(required("student", string()), "a layer of the student, e.g. classifier.3"),
      documented(required("teacher", string()), "a layer of the teacher; an adapter maps widths when they differ"),
      documented(with_default("distance", one_of({"mse", "cosine"}), std::string("mse")), "hint loss"),
      documented(with_default("weight", number(0), 1.0), "added to the loss as weight * hint loss"),
  };
}

}  // namespace

std::vector<Field> distill_modifier_fields() {
  return {
      documented(optional("teacher", reference("models")), "a model of this recipe, as trained by the stages before"),
      documented(optional("teacher_file", string()), "or any file shrink wrote (.pt, .pth, .h5), rebuilt from its blueprint"),
      documented(with_default("temperature", number(0.01, 100), 4.0), "T: softens teacher and student distributions"),
      documented(with_default("alpha", number(0, 1), 0.5), "weight of the soft-target term; 1 - alpha on the stage's loss"),
      documented(with_default("start_epoch", number(0), 0.0), "distill from this epoch"),
      documented(with_default("end_epoch", number(-1), -1.0), "until this epoch; -1: the end"),
      documented(with_default_node("features", list_of(map_of(feature_fields())), YAML::Node(YAML::NodeType::Sequence)),
                 "hint losses between named layers (`shrink inspect --layers` lists them)"),
      documented(with_default("cache_teacher_logits", boolean(), true),
                 "compute each sample's teacher logits once (no feature pairs: the data has no random augmentation)"),
  };
}

std::unique_ptr<DistillPlan> parse_distill_modifier(const YAML::Node& n) {
            distill::DistillOptions o;
            o.kd(distill::KdLossOptions().temperature(n["temperature"].as<double>()).alpha(n["alpha"].as<double>()));
            o.start_epoch(n["start_epoch"].as<double>());
            o.end_epoch(n["end_epoch"].as<double>());
            o.cache_teacher_logits(n["cache_teacher_logits"].as<bool>());
            std::vector<distill::FeaturePair> features;
            for (const auto& f : n["features"]) {
              features.push_back(distill::FeaturePair(f["student"].as<std::string>(), f["teacher"].as<std::string>())
                                     .distance(f["distance"].as<std::string>())
                                     .weight(f["weight"].as<double>()));
            }
            o.features(features);
            return std::make_unique<DistillPlan>(n["teacher"] ? n["teacher"].as<std::string>() : "",
                                                 n["teacher_file"] ? n["teacher_file"].as<std::string>() : "", o);
}

ModifierKind distill_modifier_kind() { return {"distill", map_of(distill_modifier_fields()), parse_distill_modifier}; }

}  // namespace shrink::recipe
