// The memory budget every estimate and every declared size is checked against before allocating.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::core {

// The share of physical memory the budget is by default: the rest is left to the system, the
// allocator's slack and what no estimate sees.
inline constexpr double kDefaultMemoryShare = 0.8;

uint64_t physical_memory_bytes();

// The budget: set_memory_budget_bytes's value (the CLI's --max-memory), else
// kDefaultMemoryShare of physical memory. Process-wide, like the thread count.
uint64_t memory_budget_bytes();
// 0 restores the default.
void set_memory_budget_bytes(uint64_t bytes);

// "8G", "512M", "1.5GiB", "4096": bytes, with an optional binary unit (K, M, G, T; "iB" and "B"
// allowed after it). Throws a UsageError naming `what` otherwise.
uint64_t parse_byte_size(const std::string& text, const std::string& what);

// Bytes of a tensor of shape `dims` with `item_bytes` elements; throws an Error naming `what`
// when a dimension is negative or the product overflows.
uint64_t tensor_bytes(const std::vector<int64_t>& dims, uint64_t item_bytes, const std::string& what);

// "" when `bytes` fits the budget, else what to tell the user: "needs 4.00 TiB, more than the
// memory budget of 18.4 GiB (80 % of this machine's 23.0 GiB; --max-memory sets it)".
std::string over_budget(uint64_t bytes);

// Throws a UsageError (exit 2) "<what>: <over_budget(bytes)>" when `bytes` exceeds the budget, so a forged
// header or a typo in a recipe fails with a message instead of an allocator error or a runaway
// process.
void check_fits_in_memory(uint64_t bytes, const std::string& what);

}  // namespace shrink::core
