// LibTorch's warnings (TORCH_WARN) through shrink's log instead of straight to stderr.
#pragma once

namespace shrink::core {

// For programs (the CLI), not the library: a user's own process keeps its own handler. Warnings
// become warn-level log lines prefixed "LibTorch:", which coordinate with the progress bar and
// follow --quiet; the deprecation of quantized dtypes that LibTorch 2.x prints at shrink's first
// int8 tensor goes to debug level (docs/quantization.md says where shrink stands on it). LibTorch
// keeps the handler per thread: this sets the calling thread's.
void send_torch_warnings_to_log();

}  // namespace shrink::core
