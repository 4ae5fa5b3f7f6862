// Train stage: recipe body → TrainerOptions + modifier plans → Trainer::fit.
#include "recipe/train_stage.h"

#include <map>

#include "core/error.h"
#include "recipe/option_specs.h"
#include "report/report.h"

namespace shrink::recipe {

using core::cat;

SchemaPtr training_schema(int64_t epochs_default, std::vector<Field> extra) {
  return training_spec().schema(train::TrainerOptions().epochs(epochs_default), std::move(extra));
}

train::TrainerOptions parse_training(const YAML::Node& n) { return training_spec().parse(n); }

namespace {

report::TrainingHistory history_of(const train::FitResult& r) {
  report::TrainingHistory h;
  for (const auto& e : r.epochs) {
    h.epochs.push_back({e.epoch + 1, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy, e.lr, e.seconds, e.samples_per_s});
  }
  h.resumed = r.resumed;
  h.steps = r.global_step;
  return h;
}

class TrainStage : public Stage {
 public:
  TrainStage(std::string model, train::TrainerOptions options, std::vector<std::shared_ptr<const ModifierPlan>> plans)
      : model_(std::move(model)), options_(std::move(options)), plans_(std::move(plans)) {
    train::validate(options_);
    for (size_t i = 0; i < plans_.size(); ++i) {
      try {
        plans_[i]->check_epochs(options_.epochs(), cat("training run (epochs: ", options_.epochs(), ")"));
      } catch (const core::UsageError& e) {
        throw core::UsageError(cat("modifiers.", i, ": ", e.what()));
      }
    }
  }

  const std::string& model() const override { return model_; }

  void check(torch::nn::Module& model) const override {
    std::map<std::string, size_t> owner;
    for (size_t i = 0; i < plans_.size(); ++i) {
      try {
        plans_[i]->check(model);
      } catch (const core::UsageError& e) {
        throw core::UsageError(cat("modifiers.", i, ": ", e.what()));
      }
      for (const auto& tensor : plans_[i]->claims(model)) {
        const auto [it, fresh] = owner.emplace(tensor, i);
        if (!fresh) {
          throw core::UsageError(cat("modifiers.", it->second, " and modifiers.", i, " both act on '", tensor,
                                     "'; give each tensor to one modifier (include/exclude)"));
        }
      }
    }
  }

  bool ends_in_int8() const override {
    for (const auto& p : plans_) {
      if (p->converts_to_int8()) return true;
    }
    return false;
  }

  nlohmann::json run(StageContext& ctx) override {
    return run_training(ctx.models->at(model_), ctx, options_, plans_, "train " + model_);
  }

 private:
  std::string model_;
  train::TrainerOptions options_;
  std::vector<std::shared_ptr<const ModifierPlan>> plans_;
};

}  // namespace

void record_transforms(ModelSlot& slot, const train::Modifier& modifier) {
  auto& recorded = slot.blueprint.transforms;
  for (const auto& t : modifier.transforms()) {
    bool known = false;
    for (const auto& r : recorded) known = known || (r.kind == t.kind && r.settings == t.settings);
    if (!known) recorded.push_back(t);
  }
}

nlohmann::json modifier_json(const train::Modifier& modifier) {
  const auto w = modifier.window();
  nlohmann::json j = {{"kind", modifier.name()}, {"start_epoch", w.start_epoch}, {"end_epoch", w.end_epoch}};
  const auto summary = modifier.summary();
  for (const auto& [k, v] : summary.items()) j[k] = v;
  return j;
}

nlohmann::json run_training(ModelSlot& slot, StageContext& ctx, const train::TrainerOptions& options,
                            const std::vector<std::shared_ptr<const ModifierPlan>>& plans, const std::string& label) {
  train::Trainer trainer(slot.model.module, slot.model.forward,
                         train::TrainerOptions(options)
                             .seed(ctx.seed)
                             .checkpoint_path((ctx.work_dir / "checkpoint.pt").string())
                             .resume(ctx.resume)
                             .progress(ctx.progress)
                             .label(cat("[", ctx.index, "] ", label)));
  for (const auto& plan : plans) {
    auto modifier = plan->attach(slot, ctx);
    trainer.add_modifier(modifier);
  }
  const auto r = trainer.fit(ctx.data->train, ctx.data->val);
  // Training-time transforms first (masks), then what finishing adds (int8 layers), so a restore
  // re-applies them in the order they happened.
  for (const auto& m : trainer.modifiers()) record_transforms(slot, *m);
  for (const auto& m : trainer.modifiers()) m->finish(slot.model);
  auto modifiers = nlohmann::json::array();
  for (const auto& m : trainer.modifiers()) {
    record_transforms(slot, *m);
    modifiers.push_back(modifier_json(*m));
  }
  nlohmann::json details = {
      {"training", report::to_json(history_of(r))},
      {"modifiers", modifiers}};
  // A modifier that ended training by converting to int8 (QAT) reports it as a quantize stage does.
  for (const auto& m : modifiers) {
    if (!m.contains("int8_layers")) continue;
    details["quantization"] = {{"method", m.value("kind", std::string("qat"))}, {"backend", m.value("backend", std::string())},
                               {"int8_layers", m["int8_layers"]}, {"float_layers", m.value("float_layers", nlohmann::json::array())},
                               {"device", "cpu"}};
  }
  return details;
}

StageKind train_stage_kind() {
  const auto schema = training_schema(train::TrainerOptions().epochs(),
                                      {required("model", reference("models")),
                                       with_default_node("modifiers", modifiers_schema(), YAML::Node(YAML::NodeType::Sequence))});
  return StageKind{"train", schema, [](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     return std::make_unique<TrainStage>(n["model"].as<std::string>(), parse_training(n),
                                                         parse_modifiers(n["modifiers"]));
                   }};
}

}  // namespace shrink::recipe
