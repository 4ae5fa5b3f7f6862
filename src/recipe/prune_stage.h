// The `prune` stage: L1 unstructured pruning with an optional fine-tuning run that drives the schedule.
#pragma once

#include "recipe/stage.h"

namespace shrink::recipe {

StageKind prune_stage_kind();

}  // namespace shrink::recipe
