// Asks LibTorch's dispatcher which quantized operators it still registers.
#include "runtime/int8_kernels.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include "core/error.h"

namespace shrink::runtime {

bool libtorch_has_op(const char* name) { return c10::Dispatcher::singleton().findSchema({name, ""}).has_value(); }

void throw_missing_op(const char* layer, const char* op) {
  throw core::Error(core::cat(layer, ": this LibTorch has no ", op,
                              " (PyTorch's quantized kernels are gone); run it on shrink's kernels (int8 kernels auto "
                              "or shrink)"));
}

}  // namespace shrink::runtime
