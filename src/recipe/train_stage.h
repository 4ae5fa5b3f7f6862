// The `train` stage: fits a recipe model with the library Trainer.
#pragma once

#include "recipe/stage.h"
#include "train/trainer.h"

namespace shrink::recipe {

StageKind train_stage_kind();

// The training keys (epochs, batch_size, optimizer, schedule, label_smoothing, grad_clip) shared by
// `train` and by the `finetune` maps of later stages; `epochs_default` differs between them.
std::vector<Field> training_fields(int64_t epochs_default);
SchemaPtr finetune_schema();
// `node` holds validated, default-filled training_fields.
train::TrainerOptions parse_training(const YAML::Node& node);
nlohmann::json training_json(const train::FitResult& result);
// `options` bound to a stage's run: its seed, checkpoint in its work folder, resume and progress.
train::TrainerOptions for_stage(train::TrainerOptions options, const StageContext& ctx, const std::string& label);

}  // namespace shrink::recipe
