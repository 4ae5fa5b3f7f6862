// The `prune` stage: shorthand for a fine-tuning run with one `prune` modifier (L1 unstructured).
#pragma once

#include "recipe/stage.h"

namespace shrink::recipe {

StageKind prune_stage_kind();

}  // namespace shrink::recipe
