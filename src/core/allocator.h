// Process-wide allocator settings for tensor-heavy loops.
#pragma once

namespace shrink::core {

// glibc's malloc hands large freed blocks back to the kernel and maps new ones for the next
// allocation, so each training step or conv forward page-faults its activation buffers in again
// (~10 µs a page; most of a small convnet's step here). Raising the mmap threshold and turning
// trimming off keeps freed blocks for reuse. A process-wide setting: the shrink executable and
// the benchmarks call it at start; library users decide for their own process.
void keep_freed_memory_for_reuse();

}  // namespace shrink::core
