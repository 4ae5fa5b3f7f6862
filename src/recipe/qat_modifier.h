// The `qat` modifier of training stages: quantization-aware training, then int8 conversion when
// the stage's training ends.
#pragma once

#include "recipe/modifier_kind.h"

namespace shrink::recipe {

ModifierKind qat_modifier_kind();

}  // namespace shrink::recipe
