// The `quantize` stage: post-training quantization (static with calibration, or dynamic) of a
// model to int8 layers that run LibTorch's quantized kernels.
#pragma once

#include "recipe/stage.h"

namespace shrink::recipe {

StageKind quantize_stage_kind();

}  // namespace shrink::recipe
