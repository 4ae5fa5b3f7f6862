// Whose kernels shrink's int8 layers run: shrink's own or LibTorch's quantized ones, which PyTorch
// has deprecated and plans to remove (pytorch#153892). Where a LibTorch lacks them, the layers run
// on shrink's kernels alone.
#pragma once

#include "core/enum_names.h"

namespace shrink::runtime {

enum class Int8Kernels {
  kAuto,      // shrink's where they are faster (Linear at any batch on every vector path,
              // Conv2d at any batch on AVX-512 VNNI, AVX-VNNI and on AVX2 without VNNI) and
              // wherever this LibTorch lacks the quantized op; LibTorch's elsewhere
  kShrink,    // shrink's at every batch size and on every CPU (the scalar reference below AVX2)
  kLibTorch,  // LibTorch's quantized kernels only
};
inline const core::EnumNames<Int8Kernels>& enum_names(Int8Kernels) {
  static const core::EnumNames<Int8Kernels> names{
      {Int8Kernels::kAuto, "auto"}, {Int8Kernels::kShrink, "shrink"}, {Int8Kernels::kLibTorch, "libtorch"}};
  return names;
}

// Whether this LibTorch registers the operator `name` (e.g. "quantized::linear_prepack").
bool libtorch_has_op(const char* name);
// Throws the error for `layer` ("int8 Linear") asked to run LibTorch's `op`, which this LibTorch lacks.
[[noreturn]] void throw_missing_op(const char* layer, const char* op);

}  // namespace shrink::runtime
