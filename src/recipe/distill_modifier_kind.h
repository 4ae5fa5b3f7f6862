// The `distill` modifier of training stages: a teacher (a model of the recipe, or any file shrink
// wrote) and Hinton KD settings.
#pragma once

#include "recipe/modifier_kind.h"

namespace shrink::recipe {

ModifierKind distill_modifier_kind();

}  // namespace shrink::recipe
