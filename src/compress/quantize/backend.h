// Int8 engines (LibTorch's "quantized engines"): which ones this build has, choosing one, and the
// observer defaults each accepts.
#pragma once

#include <string>
#include <vector>

#include "compress/quantize/observer.h"

namespace shrink::compress::quantize {

enum class Backend { kOneDnn, kQnnpack };

std::string backend_name(Backend b);  // "onednn" | "qnnpack"
// "auto" picks onednn where this build has it (x86), qnnpack otherwise; an engine this build
// lacks is a UsageError that lists the ones it has.
Backend resolve_backend(const std::string& name);
std::vector<std::string> available_backends();
// Makes `b` the engine int8 kernels (and packing) run on in this process.
void use_backend(Backend b);

// torch.ao.quantization's default qconfig for the engine: onednn takes per-channel symmetric
// qint8 weights and histogram-observed quint8 activations; qnnpack per-tensor symmetric weights and
// min/max-observed activations.
ObserverOptions default_weight_observer(Backend b);
ObserverOptions default_activation_observer(Backend b);
// Throws a UsageError when `b` cannot run weights or activations observed this way (onednn:
// weights symmetric qint8, activations quint8).
void check_compatible(Backend b, const ObserverOptions& weights, const ObserverOptions& activations);

}  // namespace shrink::compress::quantize
