// What every fuzz target shares: the input as a file (shrink's readers take paths), and the rule
// that a reader may only fail with a shrink Error, which must name the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace shrink::fuzz {

// Writes the input to a per-process scratch file named `file_name` and returns its path.
std::filesystem::path input_file(const uint8_t* data, size_t size, const std::string& file_name);

// Runs `read`; a core::Error that names `path` (or `must_name`) is an expected outcome. Any other
// exception, or an Error without the name, aborts: libFuzzer records the input as a finding.
void expect_clean(const std::function<void()>& read, const std::string& must_name);

}  // namespace shrink::fuzz
