// The `distill` stage: shorthand for a training run of the student with one `distill` modifier;
// its report names the teacher and the teacher's test accuracy.
#pragma once

#include "recipe/stage.h"

namespace shrink::recipe {

StageKind distill_stage_kind();

}  // namespace shrink::recipe
