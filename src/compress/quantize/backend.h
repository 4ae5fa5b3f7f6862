// Int8 engines (LibTorch's "quantized engines"): which ones this build has, choosing one, and the
// observer defaults each accepts.
#pragma once

#include <string>
#include <vector>

#include "compress/quantize/observer.h"
#include "core/enum_names.h"

namespace shrink::compress::quantize {

enum class Backend { kOneDnn, kQnnpack };
inline const core::EnumNames<Backend>& enum_names(Backend) {
  static const core::EnumNames<Backend> names{{Backend::kOneDnn, "onednn"}, {Backend::kQnnpack, "qnnpack"}};
  return names;
}

// What options ask for: an engine, or auto.
enum class BackendChoice { kAuto, kOneDnn, kQnnpack };
inline const core::EnumNames<BackendChoice>& enum_names(BackendChoice) {
  static const core::EnumNames<BackendChoice> names{
      {BackendChoice::kAuto, "auto"}, {BackendChoice::kOneDnn, "onednn"}, {BackendChoice::kQnnpack, "qnnpack"}};
  return names;
}

// auto picks onednn where this build has it (x86), qnnpack otherwise; an engine this build lacks
// is a UsageError that lists the ones it has.
Backend resolve_backend(BackendChoice choice);
// The engine an int8 file names (its blueprint's "backend").
Backend backend_from_name(const std::string& name);
std::vector<std::string> available_backends();
// Makes `b` the engine int8 kernels (and packing) run on in this process.
void use_backend(Backend b);
// LibTorch's engine that runs `b`'s kernels here: onednn's scheme runs on the x86 engine (FBGEMM's
// Linear, oneDNN's or FBGEMM's convolutions) where the build has it (LibTorch 2.x), since 2.15's
// oneDNN int8 Linear is its reference kernel; else on oneDNN's.
std::string engine_name(Backend b);

// True when `b`'s int8 kernels on this CPU path add pairs of u8 × s8 products in 16 bits, which
// saturates once both are large: oneDNN and FBGEMM (the x86 engine) without VNNI (AVX2-only, or
// AVX-512 without VNNI).
bool int8_sums_may_saturate(Backend b);

// torch.ao.quantization's default qconfig for the engine: onednn takes per-channel symmetric
// qint8 weights and histogram-observed quint8 activations; qnnpack per-tensor symmetric weights and
// min/max-observed activations. Where the sums may saturate, activations keep 7 bits
// (reduce_range), as torch.ao's x86 qconfig does: 127 × 127 × 2 fits in 16 bits.
ObserverOptions default_weight_observer(Backend b);
ObserverOptions default_activation_observer(Backend b);
// Dynamic int8's weights: where the sums may saturate, 7 bits, so that each batch's activations
// keep all 8 (255 × 64 × 2 fits in 16 bits). all-MiniLM-L6-v2's dynamic int8 embeddings were 0.975
// (mean cosine) from fp32 with 7-bit activations on AVX2 and AVX-512 without VNNI, 0.991 this way
// and 0.992 with VNNI.
ObserverOptions default_dynamic_weight_observer(Backend b);
// Throws a UsageError when `b` cannot run weights or activations observed this way (onednn:
// weights symmetric qint8, activations quint8).
void check_compatible(Backend b, const ObserverOptions& weights, const ObserverOptions& activations);

}  // namespace shrink::compress::quantize
