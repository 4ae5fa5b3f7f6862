// The `prune` modifier of training stages (L1Pruner), and its keys for the `prune` stage shorthand.
#pragma once

#include "compress/prune/l1_pruner.h"
#include "recipe/modifier_kind.h"

namespace shrink::recipe {

ModifierKind prune_modifier_kind();
// The keys of a prune modifier (method + PruneOptions), shared with the `prune` stage.
std::vector<Field> prune_modifier_fields();
std::unique_ptr<ModifierPlan> parse_prune_modifier(const YAML::Node& body);

}  // namespace shrink::recipe
