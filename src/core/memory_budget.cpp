// Memory budget checks: physical memory, a default share of it, or the user's --max-memory.
#include "core/memory_budget.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/format.h"

namespace shrink::core {

namespace {

std::atomic<uint64_t> g_budget{0};  // 0: the default

std::string human(uint64_t bytes) { return human_bytes(static_cast<int64_t>(std::min<uint64_t>(bytes, INT64_MAX))); }

}  // namespace

uint64_t physical_memory_bytes() {
  static const uint64_t bytes = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : uint64_t{1} << 34;
  }();
  return bytes;
}

uint64_t memory_budget_bytes() {
  const uint64_t set = g_budget.load();
  return set > 0
             ? set
             : static_cast<uint64_t>(std::floor(static_cast<double>(physical_memory_bytes()) * kDefaultMemoryShare));
}

void set_memory_budget_bytes(uint64_t bytes) { g_budget = bytes; }

uint64_t parse_byte_size(const std::string& text, const std::string& what) {
  const auto bad = [&] {
    return UsageError(cat(what, " expects a size such as 8G, 512M or 4096 (bytes), got '", cut_for_message(text), "'"));
  };
  size_t end = 0;
  double value = 0;
  try {
    value = std::stod(text, &end);
  } catch (const std::exception&) {
    throw bad();
  }
  std::string unit = text.substr(end);
  for (const char* suffix : {"iB", "B"}) {
    if (unit.size() > std::strlen(suffix) &&
        unit.compare(unit.size() - std::strlen(suffix), std::string::npos, suffix) == 0) {
      unit.resize(unit.size() - std::strlen(suffix));
      break;
    }
  }
  const std::string units = "KMGT";
  int shift = 0;
  if (unit.size() == 1 && units.find(static_cast<char>(std::toupper(unit[0]))) != std::string::npos) {
    shift = 10 * (1 + static_cast<int>(units.find(static_cast<char>(std::toupper(unit[0])))));
  } else if (!unit.empty()) {
    throw bad();
  }
  const double bytes = std::ldexp(value, shift);
  if (!std::isfinite(bytes) || bytes < 1 || bytes > 1.8e19) throw bad();
  return static_cast<uint64_t>(bytes);
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

std::string over_budget(uint64_t bytes) {
  const uint64_t budget = memory_budget_bytes();
  if (bytes <= budget) return "";
  const std::string source = g_budget.load() > 0
                                 ? "set by --max-memory"
                                 : cat(static_cast<int>(kDefaultMemoryShare * 100), " % of this machine's ",
                                       human(physical_memory_bytes()), "; --max-memory sets it");
  return cat("needs ", human(bytes), ", more than the memory budget of ", human(budget), " (", source, ")");
}

void check_fits_in_memory(uint64_t bytes, const std::string& what) {
  const std::string why = over_budget(bytes);
  if (!why.empty()) throw UsageError(cat(what, ": ", why));
}

}  // namespace shrink::core
