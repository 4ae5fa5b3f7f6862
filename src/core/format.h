// Human-readable figures for reports and command output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::core {

// 1536 → "1.5 KiB", 3 << 20 → "3.00 MiB", 5 << 30 → "5.00 GiB", 12 → "12 B".
std::string human_bytes(int64_t bytes);

// One number through a printf format: ("%.4f", 0.9) → "0.9000", for table cells.
std::string format_double(const char* format, double value);

// Text safe inside HTML elements and attribute values (& < > " ' escaped).
std::string html_escape(const std::string& text);
// {"a", "b"} → "a, b": lists of names in messages.
std::string join(const std::vector<std::string>& items, const std::string& separator = ", ");

}  // namespace shrink::core
