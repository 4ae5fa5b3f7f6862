// Train stage: recipe body → TrainerOptions + modifier plans → Trainer::fit.
#include "recipe/train_stage.h"

#include <algorithm>
#include <map>

#include "compress/prune/l1_pruner.h"
#include "compress/prune/mask_keeper.h"
#include "core/error.h"
#include "io/state_dict.h"
#include "models/restore.h"
#include "train/history.h"

namespace shrink::recipe {

using core::cat;

SchemaPtr training_schema(int64_t epochs_default, std::vector<Field> extra) {
  return train::training_spec().schema(train::TrainerOptions().epochs(epochs_default), std::move(extra));
}

train::TrainerOptions parse_training(const YAML::Node& n) { return train::training_spec().parse(n); }

namespace {

class TrainStage : public Stage {
 public:
  TrainStage(std::string model, train::TrainerOptions options,
             std::vector<std::shared_ptr<const train::ModifierPlan>> plans)
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
    // A layer replaced by a smaller one as the run ends leaves an int8 conversion of the same run
    // holding the old one.
    for (size_t i = 0; i < plans_.size(); ++i) {
      for (size_t j = 0; j < plans_.size(); ++j) {
        if (plans_[i]->reshapes_model() && plans_[j]->converts_to_int8()) {
          throw core::UsageError(cat("modifiers.", i, " removes channels as the run ends, which modifiers.", j,
                                     "'s int8 conversion cannot follow; quantize in a later stage"));
        }
      }
    }
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

  StageBatches batches() const override {
    return {options_.batch_size(), options_.eval_batch_size(), companions_of(plans_)};
  }

  StageOutcome run(StageContext& ctx) override {
    return run_training(ctx.models->at(model_), ctx, options_, plans_, "train " + model_);
  }

 private:
  std::string model_;
  train::TrainerOptions options_;
  std::vector<std::shared_ptr<const train::ModifierPlan>> plans_;
};

}  // namespace

train::ModifierContext modifier_context(ModelSlot& slot, StageContext& ctx) {
  train::ModifierContext m;
  m.model = slot.model;
  m.train = &ctx.data->train;
  m.device = ctx.device;
  m.model_named = [&slot, &ctx](const std::string& name) {
    const auto it = ctx.models->find(name);
    if (it == ctx.models->end()) throw core::UsageError(cat("no model '", name, "' in the recipe"));
    // The stage's own model beside itself is the model as it entered the stage (distilling a
    // pruned model from its unpruned self): a copy, so training one leaves the other.
    if (&it->second == &slot) return copy_model(slot, ctx.device);
    return it->second.model;
  };
  m.copy_model = [&slot, &ctx] { return copy_model(slot, ctx.device); };
  return m;
}

models::Model copy_model(const ModelSlot& slot, c10::Device device) {
  auto copy = models::build(slot.blueprint);
  const auto tensors = io::state_dict(*slot.model.module);
  // Masks a pruner of this run attached before the copy are not in the blueprint yet.
  std::vector<std::string> names;
  for (const auto& entry : tensors) names.push_back(entry.name);
  compress::prune::ensure_mask_buffers(*copy.module, names);
  copy.module->to(device);
  io::load_state_dict(*copy.module, tensors, "model '" + slot.name + "'");
  return copy;
}

std::vector<std::string> companions_of(const std::vector<std::shared_ptr<const train::ModifierPlan>>& plans) {
  std::vector<std::string> names;
  for (const auto& plan : plans) {
    for (auto& name : plan->companions()) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
    }
  }
  return names;
}

void record_transforms(ModelSlot& slot, const train::Modifier& modifier) {
  auto& recorded = slot.blueprint.transforms;
  for (const auto& t : modifier.transforms()) {
    bool known = false;
    for (const auto& r : recorded) known = known || (r.kind == t.kind && r.settings == t.settings);
    if (!known) recorded.push_back(t);
  }
}

StageOutcome run_training(ModelSlot& slot, StageContext& ctx, const train::TrainerOptions& options,
                          const std::vector<std::shared_ptr<const train::ModifierPlan>>& plans,
                          const std::string& label, std::vector<std::shared_ptr<train::Modifier>>* attached) {
  train::Trainer trainer(slot.model.module, slot.model.forward,
                         train::TrainerOptions(options)
                             .seed(ctx.seed)
                             .checkpoint_path((ctx.work_dir / "checkpoint.pt").string())
                             .resume(ctx.resume)
                             .progress(ctx.progress)
                             .group(ctx.group)
                             .label(cat("[", ctx.index, "] ", label)));
  // A model pruned before (an earlier stage, or a file with masks) stays pruned while it trains.
  if (auto keeper = std::make_shared<compress::prune::MaskKeeper>(*slot.model.module); keeper->any())
    trainer.add_callback(keeper);
  auto mctx = modifier_context(slot, ctx);
  for (const auto& plan : plans) {
    auto modifier = plan->attach(mctx);
    trainer.add_modifier(modifier);
    if (attached) attached->push_back(modifier);
  }
  const auto r = trainer.fit(ctx.data->train, ctx.data->val);
  // Training-time transforms first (masks), then what finishing adds (int8 layers), so a restore
  // re-applies them in the order they happened.
  for (const auto& m : trainer.modifiers()) record_transforms(slot, *m);
  for (const auto& m : trainer.modifiers()) m->finish(slot.model);
  StageOutcome out;
  out.training = train::history_of(r);
  out.modifiers.emplace();
  for (const auto& m : trainer.modifiers()) {
    record_transforms(slot, *m);
    out.modifiers->push_back(train::ModifierRecord::of(*m));
    for (auto& section : out.modifiers->back().summary->stage_sections()) out.sections.push_back(std::move(section));
  }
  return out;
}

StageKind train_stage_kind() {
  const auto schema =
      training_schema(train::TrainerOptions().epochs(),
                      {required("model", reference("models")),
                       with_default_node("modifiers", modifiers_schema(), YAML::Node(YAML::NodeType::Sequence))});
  return StageKind{"train", schema, [](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     return std::make_unique<TrainStage>(n["model"].as<std::string>(), parse_training(n),
                                                         parse_modifiers(n["modifiers"]));
                   }};
}

}  // namespace shrink::recipe
