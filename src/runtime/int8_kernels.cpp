// Asks LibTorch's dispatcher which quantized operators it still registers.
#include "runtime/int8_kernels.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace shrink::runtime {

bool libtorch_has_op(const char* name) { return c10::Dispatcher::singleton().findSchema({name, ""}).has_value(); }

}  // namespace shrink::runtime
