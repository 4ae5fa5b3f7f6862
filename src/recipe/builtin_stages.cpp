// The lists of stage and modifier kinds shrink ships with; a new kind adds one line here.
#include <mutex>

#include "recipe/distill_modifier_kind.h"
#include "recipe/distill_stage.h"
#include "recipe/modifier_kind.h"
#include "recipe/prune_modifier.h"
#include "recipe/prune_stage.h"
#include "recipe/qat_modifier.h"
#include "recipe/quantize_stage.h"
#include "recipe/stage.h"
#include "recipe/train_stage.h"

namespace shrink::recipe {

void register_builtin_modifiers() {
  static std::once_flag once;
  std::call_once(once, [] {
    ModifierRegistry::instance().add(prune_modifier_kind());
    ModifierRegistry::instance().add(qat_modifier_kind());
    ModifierRegistry::instance().add(distill_modifier_kind());
  });
}

void register_builtin_stages() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_builtin_modifiers();
    StageRegistry::instance().add(train_stage_kind());
    StageRegistry::instance().add(prune_stage_kind());
    StageRegistry::instance().add(quantize_stage_kind());
    StageRegistry::instance().add(distill_stage_kind());
  });
}

}  // namespace shrink::recipe
