// The `train` stage: fits a recipe model with the library Trainer.
#pragma once

#include "recipe/stage.h"

namespace shrink::recipe {

StageKind train_stage_kind();

// Recipe schemas for the optimizer and LR schedule, shared with later stages that fine-tune.
SchemaPtr optimizer_schema();
SchemaPtr schedule_schema();

}  // namespace shrink::recipe
