// glibc malloc tuning (no-op elsewhere).
#include "core/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace shrink::core {

void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // blocks up to 32 MiB come from the heap, not fresh mmaps
  mallopt(M_TRIM_THRESHOLD, 1 << 30);   // keep up to 1 GiB of freed heap instead of returning it
#endif
}

}  // namespace shrink::core
