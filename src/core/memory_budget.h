// The memory bound every reader checks declared sizes against before it allocates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::core {

// Physical memory of this machine: no single tensor shrink reads or builds may exceed it.
uint64_t memory_budget_bytes();

// Bytes of a tensor of shape `dims` with `item_bytes` elements; throws an Error naming `what`
// when a dimension is negative or the product overflows.
uint64_t tensor_bytes(const std::vector<int64_t>& dims, uint64_t item_bytes, const std::string& what);

// Throws an Error naming `what` when `bytes` exceeds the budget, so a forged header or a typo in
// a recipe fails with a message instead of an allocator error or a runaway process.
void check_fits_in_memory(uint64_t bytes, const std::string& what);

}  // namespace shrink::core
