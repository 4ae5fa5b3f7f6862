// Distill stage: the shorthand for "train the student with this teacher" (one distill modifier).
#include "recipe/distill_stage.h"

#include <torch/utils.h>

#include <filesystem>
#include <optional>

#include "core/error.h"
#include "distill/distill_modifier.h"
#include "distill/distill_summary.h"
#include "io/state_dict.h"
#include "models/restore.h"
#include "recipe/modifier_kind.h"
#include "recipe/train_stage.h"
#include "train/metrics.h"

namespace shrink::recipe {

using core::cat;

namespace {

class DistillStage : public Stage {
 public:
  DistillStage(std::string model, std::shared_ptr<const train::ModifierPlan> plan, train::TrainerOptions options,
               bool baseline)
      : model_(std::move(model)), plan_(std::move(plan)), options_(std::move(options)), baseline_(baseline) {
    train::validate(options_);
    plan_->check_epochs(options_.epochs(), cat("training run (epochs: ", options_.epochs(), ")"));
  }

  const std::string& model() const override { return model_; }
  void check(torch::nn::Module& model) const override { plan_->check(model); }

  StageBatches batches() const override {
    return {options_.batch_size(), options_.eval_batch_size(), companions_of({plan_})};
  }

  StageOutcome run(StageContext& ctx) override {
    auto& slot = ctx.models->at(model_);
    if (baseline_ && !ctx.data->train.labelled()) {
      throw core::UsageError("baseline: training the student alone needs labels, and this data has none");
    }
    std::optional<Alone> alone;
    if (baseline_) alone = train_alone(slot, ctx);
    std::vector<std::shared_ptr<train::Modifier>> attached;
    auto out = run_training(slot, ctx, options_, {plan_}, "distill " + model_, &attached);
    auto report = std::make_shared<distill::DistillationReport>();
    report->distill = out.modifiers->front();
    // The teacher's accuracy on the same test data, beside the student's in the stage table.
    const auto distiller = std::dynamic_pointer_cast<distill::DistillModifier>(attached.front());
    SHRINK_CHECK(distiller, "the distill stage's modifier is not a DistillModifier");
    const auto& t = distiller->teacher();
    if (ctx.data->test.labelled())
      report->teacher_accuracy = train::evaluate(*t.module, t.forward, ctx.data->test).accuracy;
    if (alone) {
      report->alone_accuracy = alone->accuracy;
      report->alone_training = alone->training;
    }
    out.sections.push_back(report);
    return out;
  }

 private:
  // The control: a copy of the student, from the same weights, trained with the same seed,
  // batches and settings but no teacher. Runs first and reseeds after, so the distilled student
  // is the same with or without it.
  struct Alone {
    double accuracy = 0;  // on the test set
    train::TrainingHistory training;
  };
  Alone train_alone(const ModelSlot& slot, StageContext& ctx) const {
    ModelSlot alone{slot.name + " (alone)", slot.blueprint, copy_model(slot, ctx.device)};
    StageContext alone_ctx = ctx;
    alone_ctx.work_dir = ctx.work_dir / "alone";
    std::filesystem::create_directories(alone_ctx.work_dir);
    const auto outcome = run_training(alone, alone_ctx, options_, {}, "train " + model_ + " alone");
    torch::manual_seed(ctx.seed);
    return {train::evaluate(*alone.model.module, alone.model.forward, ctx.data->test).accuracy, *outcome.training};
  }

  std::string model_;
  std::shared_ptr<const train::ModifierPlan> plan_;
  train::TrainerOptions options_;
  bool baseline_;
};

}  // namespace

StageKind distill_stage_kind() {
  // The keys of the `distill` modifier, with the model, its training run and the baseline.
  const auto& distill = modifier_kind("distill");
  auto fields = distill.schema->fields;
  fields.insert(fields.begin(), required("model", reference("models")));
  fields.push_back(documented(with_default("baseline", boolean(), false),
                              "also train a copy of the student from the same weights, seed and batches without the "
                              "teacher; the report gives both accuracies"));
  return StageKind{"distill", training_schema(train::TrainerOptions().epochs(), fields),
                   [&distill](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     return std::make_unique<DistillStage>(n["model"].as<std::string>(), distill.create(n),
                                                           parse_training(n), n["baseline"].as<bool>());
                   }};
}

}  // namespace shrink::recipe
