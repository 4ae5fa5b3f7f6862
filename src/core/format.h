// Human-readable figures for reports and command output.
#pragma once

#include <cstddef>
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
// join() of at most `max` items, then "... (N in all)": a message listing a recipe's 100,000
// names stays readable.
std::string join_some(const std::vector<std::string>& items, size_t max = 20, const std::string& separator = ", ");

// `text` whole when short, else its first `max` characters and how long it was: a message that
// echoes a user's value stays readable when the value is megabytes long.
std::string cut_for_message(const std::string& text, size_t max = 120);

}  // namespace shrink::core
