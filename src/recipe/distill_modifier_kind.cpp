// Distill modifier: recipe body → DistillOptions + teacher → a DistillModifier.
#include "recipe/distill_modifier_kind.h"

#include "core/error.h"
#include "distill/distill_modifier.h"
#include "models/restore.h"

namespace shrink::recipe {

using core::cat;

namespace {

class DistillPlan : public ModifierPlan {
 public:
  DistillPlan(std::string teacher, std::string teacher_file, distill::DistillOptions options)
      : teacher_(std::move(teacher)), teacher_file_(std::move(teacher_file)), options_(std::move(options)) {
    distill::validate(options_.kd());
    if (teacher_.empty() == teacher_file_.empty()) {
      throw core::UsageError("give the teacher as `teacher` (a model of this recipe) or `teacher_file`, not both or neither");
    }
  }

  void check_epochs(int64_t epochs, const std::string& run) const override {
    if (options_.start_epoch() >= static_cast<double>(epochs)) {
      throw core::UsageError(cat("start_epoch (", options_.start_epoch(), ") must fall inside the ", run));
    }
  }

  std::shared_ptr<train::Modifier> attach(ModelSlot& slot, StageContext& ctx) const override {
    if (!teacher_file_.empty()) {
      auto restored = models::restore_model(teacher_file_);
      restored.model.module->to(ctx.device);
      return std::make_shared<distill::DistillModifier>(restored.model, teacher_file_, options_);
    }
    const auto it = ctx.models->find(teacher_);
    if (it == ctx.models->end()) throw core::UsageError(cat("distill: no model '", teacher_, "' in the recipe"));
    if (&it->second == &slot) throw core::UsageError(cat("distill: model '", teacher_, "' cannot teach itself"));
    it->second.model.module->to(ctx.device);
    return std::make_shared<distill::DistillModifier>(it->second.model, teacher_, options_);
  }

 private:
  std::string teacher_, teacher_file_;
  distill::DistillOptions options_;
};

}  // namespace

std::vector<Field> distill_modifier_fields() {
  return {
      documented(optional("teacher", reference("models")), "a model of this recipe, as trained by the stages before"),
      documented(optional("teacher_file", string()), "or any file shrink wrote (.pt, .pth, .h5), rebuilt from its blueprint"),
      documented(with_default("temperature", number(0.01, 100), 4.0), "T: softens teacher and student distributions"),
      documented(with_default("alpha", number(0, 1), 0.5), "weight of the soft-target term; 1 - alpha on the stage's loss"),
      documented(with_default("start_epoch", number(0), 0.0), "distill from this epoch"),
      documented(with_default("end_epoch", number(-1), -1.0), "until this epoch; -1: the end"),
  };
}

std::unique_ptr<ModifierPlan> parse_distill_modifier(const YAML::Node& n) {
            distill::DistillOptions o;
            o.kd(distill::KdLossOptions().temperature(n["temperature"].as<double>()).alpha(n["alpha"].as<double>()));
            o.start_epoch(n["start_epoch"].as<double>());
            o.end_epoch(n["end_epoch"].as<double>());
            return std::make_unique<DistillPlan>(n["teacher"] ? n["teacher"].as<std::string>() : "",
                                                 n["teacher_file"] ? n["teacher_file"].as<std::string>() : "", o);
}

ModifierKind distill_modifier_kind() { return {"distill", map_of(distill_modifier_fields()), parse_distill_modifier}; }

}  // namespace shrink::recipe
