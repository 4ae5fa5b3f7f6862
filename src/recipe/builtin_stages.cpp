// The list of stage kinds shrink ships with; a new kind adds one line here. (Modifier kinds
// register themselves from their own files: train/modifier_kind.h.)
#include <mutex>

#include "recipe/distill_stage.h"
#include "recipe/prune_stage.h"
#include "recipe/quantize_stage.h"
#include "recipe/stage.h"
#include "recipe/train_stage.h"

namespace shrink::recipe {

void register_builtin_stages() {
  static std::once_flag once;
  std::call_once(once, [] {
    StageRegistry::instance().add(train_stage_kind());
    StageRegistry::instance().add(prune_stage_kind());
    StageRegistry::instance().add(quantize_stage_kind());
    StageRegistry::instance().add(distill_stage_kind());
  });
}

}  // namespace shrink::recipe
