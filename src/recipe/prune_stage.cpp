// Prune stage: the shorthand for a fine-tuning run with one prune modifier (or a one-shot prune
// when finetune.epochs is 0).
#include "recipe/prune_stage.h"

#include "compress/prune/l1_pruner.h"
#include "core/error.h"
#include "recipe/modifier_kind.h"
#include "recipe/train_stage.h"

namespace shrink::recipe {

using core::cat;

namespace {

// The prune stage's report repeats its one modifier's record under "pruning", the key
// shrink.report/1 gave it; reports read back keep it as they found it.
class PruningSection : public train::ReportSection {
 public:
  explicit PruningSection(train::ModifierRecord record) : record_(std::move(record)) {}
  std::string key() const override { return "pruning"; }
  nlohmann::json to_json() const override { return record_.to_json(); }

 private:
  train::ModifierRecord record_;
};

class PruneStage : public Stage {
 public:
  PruneStage(std::string model, std::shared_ptr<const train::ModifierPlan> plan, train::TrainerOptions finetune)
      : model_(std::move(model)), plan_(std::move(plan)), finetune_(std::move(finetune)) {
    train::validate(finetune_);
    plan_->check_epochs(finetune_.epochs(), cat("fine-tuning run (finetune.epochs: ", finetune_.epochs(), ")"));
  }

  const std::string& model() const override { return model_; }

  void check(torch::nn::Module& model) const override { plan_->check(model); }

  StageBatches batches() const override {
    return {finetune_.epochs() > 0 ? finetune_.batch_size() : 0, finetune_.eval_batch_size(), {}};
  }

  StageOutcome run(StageContext& ctx) override {
    auto& slot = ctx.models->at(model_);
    StageOutcome out;
    if (finetune_.epochs() == 0) {
      auto mctx = modifier_context(slot, ctx);
      const auto modifier = plan_->attach(mctx);
      const auto pruner = std::dynamic_pointer_cast<compress::prune::L1Pruner>(modifier);
      SHRINK_CHECK(pruner, "the prune stage's modifier is not an L1Pruner");
      pruner->prune_to_fraction_of_target(1.0);
      record_transforms(slot, *modifier);
      modifier->finish(slot.model);  // channels: removed
      record_transforms(slot, *modifier);
      out.modifiers = std::vector<train::ModifierRecord>{train::ModifierRecord::of(*modifier)};
    } else {
      out = run_training(slot, ctx, finetune_, {plan_}, "prune " + model_);
    }
    out.sections.push_back(std::make_shared<PruningSection>(out.modifiers->front()));
    return out;
  }

 private:
  std::string model_;
  std::shared_ptr<const train::ModifierPlan> plan_;
  train::TrainerOptions finetune_;
};

}  // namespace

StageKind prune_stage_kind() {
  // The keys of the `prune` modifier, with the model and its fine-tuning run.
  const auto& prune = modifier_kind("prune");
  auto fields = prune.schema->fields;
  fields.insert(fields.begin(), required("model", reference("models")));
  fields.push_back(with_default_node("finetune", training_schema(0), YAML::Node(YAML::NodeType::Map)));
  // The modifier's keys per structure (n:m's group size) stay tied to their tag.
  const auto schema = prune.schema->tag_key.empty() ? map_of(fields)
                                                    : tagged_map(fields, prune.schema->tag_key, prune.schema->variants);
  return StageKind{"prune", schema, [&prune](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     return std::make_unique<PruneStage>(n["model"].as<std::string>(), prune.create(n),
                                                         parse_training(n["finetune"]));
                   }};
}

}  // namespace shrink::recipe
