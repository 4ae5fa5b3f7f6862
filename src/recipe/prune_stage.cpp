// Prune stage: the shorthand for a fine-tuning run with one prune modifier (or a one-shot prune
// when finetune.epochs is 0).
#include "recipe/prune_stage.h"

#include "compress/prune/l1_pruner.h"
#include "core/error.h"
#include "recipe/prune_modifier.h"
#include "recipe/train_stage.h"

namespace shrink::recipe {

using core::cat;

namespace {

class PruneStage : public Stage {
 public:
  PruneStage(std::string model, std::shared_ptr<const ModifierPlan> plan, train::TrainerOptions finetune)
      : model_(std::move(model)), plan_(std::move(plan)), finetune_(std::move(finetune)) {
    train::validate(finetune_);
    plan_->check_epochs(finetune_.epochs(), cat("fine-tuning run (finetune.epochs: ", finetune_.epochs(), ")"));
  }

  const std::string& model() const override { return model_; }

  void check(torch::nn::Module& model) const override { plan_->check(model); }

  nlohmann::json run(StageContext& ctx) override {
    auto& slot = ctx.models->at(model_);
    nlohmann::json details;
    if (finetune_.epochs() == 0) {
      const auto modifier = plan_->attach(slot, ctx);
      const auto pruner = std::dynamic_pointer_cast<compress::prune::L1Pruner>(modifier);
      SHRINK_CHECK(pruner, "the prune stage's modifier is not an L1Pruner");
      pruner->prune_to_fraction_of_target(1.0);
      record_transforms(slot, *modifier);
      details["modifiers"] = nlohmann::json::array({modifier_json(*modifier)});
    } else {
      details = run_training(slot, ctx, finetune_, {plan_}, "prune " + model_);
    }
    // The shorthand's report keeps its own key for what the one modifier did.
    details["pruning"] = details["modifiers"][0];
    return details;
  }

 private:
  std::string model_;
  std::shared_ptr<const ModifierPlan> plan_;
  train::TrainerOptions finetune_;
};

}  // namespace

StageKind prune_stage_kind() {
  auto fields = prune_modifier_fields();
  fields.insert(fields.begin(), required("model", reference("models")));
  fields.push_back(with_default_node("finetune", training_schema(0), YAML::Node(YAML::NodeType::Map)));
  return StageKind{"prune", map_of(fields), [](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     return std::make_unique<PruneStage>(n["model"].as<std::string>(), parse_prune_modifier(n),
                                                         parse_training(n["finetune"]));
                   }};
}

}  // namespace shrink::recipe
