// Atomic file writes: data goes to a temporary beside the target, then rename() replaces it.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace shrink::core {

// Calls write(temp_path), then renames temp_path over `path`. On any failure the temporary is
// removed and `path` keeps its previous content.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& temp_path)>& write);

void write_text_atomically(const std::filesystem::path& path, const std::string& text);

std::string read_text_file(const std::filesystem::path& path);

}  // namespace shrink::core
