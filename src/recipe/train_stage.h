// The `train` stage: fits a recipe model with the library Trainer and any number of modifiers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "recipe/modifier_kind.h"
#include "recipe/stage.h"
#include "train/trainer.h"

namespace shrink::recipe {

StageKind train_stage_kind();

// The training keys (epochs, batch_size, optimizer, schedule, label_smoothing, grad_clip), with
// `epochs` defaulting to `epochs_default`: `train` stages and the `finetune` maps of later stages.
SchemaPtr training_schema(int64_t epochs_default, std::vector<Field> extra = {});
train::TrainerOptions parse_training(const YAML::Node& node);

// One training run of the stage's model with `plans` attached in order, the Trainer bound to the
// stage (seed, checkpoint, resume, progress). Structural changes are recorded in the model's
// blueprint. Returns the training history, the modifiers' records and the sections they add.
StageOutcome run_training(ModelSlot& slot, StageContext& ctx, const train::TrainerOptions& options,
                          const std::vector<std::shared_ptr<const train::ModifierPlan>>& plans,
                          const std::string& label, std::vector<std::shared_ptr<train::Modifier>>* attached = nullptr);
// What a modifier attached to `slot`'s model may reach: its data, device, and the run's other
// models by name (its own name: a copy of the model as it is when the modifier attaches).
train::ModifierContext modifier_context(ModelSlot& slot, StageContext& ctx);

// A copy of the slot's model on `device`: rebuilt from its blueprint, its tensors loaded.
models::Model copy_model(const ModelSlot& slot, c10::Device device);

// The models `plans` run beside the trained one (their companions), each named once.
std::vector<std::string> companions_of(const std::vector<std::shared_ptr<const train::ModifierPlan>>& plans);

// Appends what `modifier` changed in the model's structure to the slot's blueprint (once).
void record_transforms(ModelSlot& slot, const train::Modifier& modifier);

}  // namespace shrink::recipe
