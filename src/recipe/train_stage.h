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
train::TrainerOptions parse_finetune(const YAML::Node& node);
nlohmann::json training_json(const train::FitResult& result);

}  // namespace shrink::recipe
