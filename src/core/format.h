// Human-readable figures for reports and command output.
#pragma once

#include <cstdint>
#include <string>

namespace shrink::core {

// 1536 → "1.5 KiB", 3 << 20 → "3.00 MiB", 12 → "12 B".
std::string human_bytes(int64_t bytes);

}  // namespace shrink::core
