// Memory budget checks, from the machine's physical memory.
#include "core/memory_budget.h"

#include <unistd.h>

#include "core/error.h"
#include "core/format.h"

namespace shrink::core {

uint64_t memory_budget_bytes() {
  static const uint64_t bytes = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : uint64_t{1} << 34;
  }();
  return bytes;
}

uint64_t tensor_bytes(const std::vector<int64_t>& dims, uint64_t item_bytes, const std::string& what) {
  uint64_t total = item_bytes;
  for (int64_t d : dims) {
    if (d < 0) throw Error(cat(what, ": negative dimension ", d));
    if (__builtin_mul_overflow(total, static_cast<uint64_t>(d), &total)) {
      throw Error(cat(what, ": declared shape overflows 64 bits (corrupt?)"));
    }
  }
  return total;
}

void check_fits_in_memory(uint64_t bytes, const std::string& what) {
  const uint64_t budget = memory_budget_bytes();
  if (bytes > budget) {
    throw Error(cat(what, ": needs ", human_bytes(static_cast<int64_t>(std::min<uint64_t>(bytes, INT64_MAX))),
                    ", more than this machine's ", human_bytes(static_cast<int64_t>(budget)), " of memory"));
  }
}

}  // namespace shrink::core
