// Dynamic int8 of a TorchScript model's Linear layers: each aten::linear call on a submodule's
// weight runs as quantized::linear_dynamic on weights quantized as the zoo's dynamic layers are
// (same observer, same engine), held by a QuantizedLinear in the submodule's place. Restored files
// re-apply it (transform kind "torchscript_int8").
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "compress/quantize/backend.h"
#include "compress/quantize/observer.h"
#include "compress/quantize/quantization_summary.h"
#include "core/pattern.h"
#include "models/blueprint.h"
#include "models/model.h"
#include "models/torchscript.h"

namespace shrink::compress::quantize {

inline constexpr const char* kTorchScriptInt8Transform = "torchscript_int8";

// Which of a TorchScript model's Linear layers dynamic int8 converts, and which it leaves float
// with the reason (one it cannot replace, or one `exclude` matches).
struct ScriptedLinearPlan {
  std::vector<models::ScriptedLinear> convert;
  std::vector<FloatLayer> keep;
};
ScriptedLinearPlan plan_torchscript_dynamic(const models::TorchScriptModelImpl& model,
                                            const std::vector<core::Pattern>& exclude);

// Converts the planned layers of `model` (a TorchScript model) in place; fills `summary`'s int8
// and float layers (and warns of the latter). Returns the transform to record.
models::Transform convert_torchscript_dynamic(models::Model& model, Backend backend, const ObserverOptions& weights,
                                              const std::vector<core::Pattern>& exclude, QuantizationSummary& summary);

// Re-applies a recorded conversion to a freshly built TorchScript model: int8 layers with their
// buffers ready for load_state_dict.
void apply_torchscript_int8(models::Model& model, const nlohmann::json& settings);

}  // namespace shrink::compress::quantize
