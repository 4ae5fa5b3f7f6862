// The `quantize` stage: post-training quantization (static with calibration, or dynamic) of a
// model to int8 layers that run LibTorch's quantized kernels.
#pragma once

#include "compress/quantize/observer.h"
#include "recipe/stage.h"

namespace shrink::recipe {

StageKind quantize_stage_kind();

// The schema of an observer map (`weights`, `activations`); absent keys keep the engine's
// defaults, so every key is optional.
SchemaPtr observer_schema();
// Applies the keys `node` has over `base` (the engine's default observer).
compress::quantize::ObserverOptions parse_observer(const YAML::Node& node, compress::quantize::ObserverOptions base);

}  // namespace shrink::recipe
