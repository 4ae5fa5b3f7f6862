// Distill stage: the shorthand for "train the student with this teacher" (one distill modifier).
#include "recipe/distill_stage.h"

#include <torch/utils.h>

#include <filesystem>
#include <optional>

#include "core/error.h"
#include "io/state_dict.h"
#include "models/restore.h"
#include "recipe/distill_modifier_kind.h"
#include "recipe/train_stage.h"
#include "train/metrics.h"

namespace shrink::recipe {

using core::cat;

namespace {

class DistillStage : public Stage {
 public:
  DistillStage(std::string model, std::shared_ptr<const DistillPlan> plan, train::TrainerOptions options, bool baseline)
      : model_(std::move(model)), plan_(std::move(plan)), options_(std::move(options)), baseline_(baseline) {
    train::validate(options_);
    plan_->check_epochs(options_.epochs(), cat("training run (epochs: ", options_.epochs(), ")"));
  }

  const std::string& model() const override { return model_; }
  void check(torch::nn::Module& model) const override { plan_->check(model); }

  nlohmann::json run(StageContext& ctx) override {
    auto& slot = ctx.models->at(model_);
    std::optional<Alone> alone;
    if (baseline_) alone = train_alone(slot, ctx);
    auto details = run_training(slot, ctx, options_, {plan_}, "distill " + model_);
    auto& m = details["modifiers"][0];
    nlohmann::json teacher = {{"teacher", plan_->teacher_name()}};
    // The teacher's accuracy on the same test data, beside the student's in the stage table.
    const auto t = plan_->teacher(slot, ctx);
    teacher["teacher_accuracy"] = train::evaluate(*t.module, t.forward, ctx.data->test).accuracy;
    for (const auto& [k, v] : m.items()) {
      if (k != "kind") teacher[k] = v;
    }
    if (alone) {
      teacher["student_alone_accuracy"] = alone->accuracy;
      teacher["student_alone_training"] = alone->training;  // report::TrainingHistory's JSON
    }
    details["distillation"] = teacher;
    return details;
  }

 private:
  // The control: a copy of the student, from the same weights, trained with the same seed,
  // batches and settings but no teacher. Runs first and reseeds after, so the distilled student
  // is the same with or without it.
  struct Alone {
    double accuracy = 0;  // on the test set
    nlohmann::json training;
  };
  Alone train_alone(const ModelSlot& slot, StageContext& ctx) const {
    ModelSlot alone{slot.name + " (alone)", slot.blueprint, models::build(slot.blueprint)};
    alone.model.module->to(ctx.device);
    io::load_state_dict(*alone.model.module, io::state_dict(*slot.model.module), "model '" + slot.name + "'");
    StageContext alone_ctx = ctx;
    alone_ctx.work_dir = ctx.work_dir / "alone";
    std::filesystem::create_directories(alone_ctx.work_dir);
    const auto details = run_training(alone, alone_ctx, options_, {}, "train " + model_ + " alone");
    torch::manual_seed(ctx.seed);
    return {train::evaluate(*alone.model.module, alone.model.forward, ctx.data->test).accuracy, details.at("training")};
  }

  std::string model_;
  std::shared_ptr<const DistillPlan> plan_;
  train::TrainerOptions options_;
  bool baseline_;
};

}  // namespace

StageKind distill_stage_kind() {
  auto fields = distill_modifier_fields();
  fields.insert(fields.begin(), required("model", reference("models")));
  fields.push_back(documented(with_default("baseline", boolean(), false),
                              "also train a copy of the student from the same weights, seed and batches without the "
                              "teacher; the report gives both accuracies"));
  return StageKind{"distill", training_schema(train::TrainerOptions().epochs(), fields),
                   [](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     return std::make_unique<DistillStage>(n["model"].as<std::string>(), parse_distill_modifier(n),
                                                           parse_training(n), n["baseline"].as<bool>());
                   }};
}

}  // namespace shrink::recipe
