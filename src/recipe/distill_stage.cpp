// Distill stage: the shorthand for "train the student with this teacher" (one distill modifier).
#include "recipe/distill_stage.h"

#include "core/error.h"
#include "recipe/distill_modifier_kind.h"
#include "recipe/train_stage.h"
#include "train/metrics.h"

namespace shrink::recipe {

using core::cat;

namespace {

class DistillStage : public Stage {
 public:
  DistillStage(std::string model, std::shared_ptr<const ModifierPlan> plan, train::TrainerOptions options)
      : model_(std::move(model)), plan_(std::move(plan)), options_(std::move(options)) {
    train::validate(options_);
    plan_->check_epochs(options_.epochs(), cat("training run (epochs: ", options_.epochs(), ")"));
  }

  const std::string& model() const override { return model_; }

  nlohmann::json run(StageContext& ctx) override {
    auto details = run_training(ctx.models->at(model_), ctx, options_, {plan_}, "distill " + model_);
    auto& m = details["modifiers"][0];
    nlohmann::json teacher = {{"teacher", m.value("teacher", std::string())}};
    // The teacher's accuracy on the same test data, beside the student's in the stage table.
    const auto it = ctx.models->find(teacher["teacher"].get<std::string>());
    if (it != ctx.models->end()) {
      teacher["teacher_accuracy"] = train::evaluate(*it->second.model.module, it->second.model.forward, ctx.data->test).accuracy;
    }
    for (const auto& [k, v] : m.items()) {
      if (k != "kind") teacher[k] = v;
    }
    details["distillation"] = teacher;
    return details;
  }

 private:
  std::string model_;
  std::shared_ptr<const ModifierPlan> plan_;
  train::TrainerOptions options_;
};

}  // namespace

StageKind distill_stage_kind() {
  auto fields = distill_modifier_fields();
  fields.insert(fields.begin(), required("model", reference("models")));
  return StageKind{"distill", training_schema(train::TrainerOptions().epochs(), fields),
                   [](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     return std::make_unique<DistillStage>(n["model"].as<std::string>(), parse_distill_modifier(n),
                                                           parse_training(n));
                   }};
}

}  // namespace shrink::recipe
