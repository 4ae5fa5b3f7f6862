// The `distill` modifier of training stages: a teacher (a model of the recipe, or any file shrink
// wrote) and Hinton KD settings.
#pragma once

#include "recipe/modifier_kind.h"

namespace shrink::recipe {

ModifierKind distill_modifier_kind();
// The keys of a distill modifier (teacher, teacher_file, temperature, alpha, window), shared with
// the `distill` stage, and their parse.
std::vector<Field> distill_modifier_fields();
std::unique_ptr<ModifierPlan> parse_distill_modifier(const YAML::Node& body);

}  // namespace shrink::recipe
