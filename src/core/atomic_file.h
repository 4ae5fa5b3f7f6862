// Atomic file writes: data goes to a temporary beside the target, then rename() replaces it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

namespace shrink::core {

// The temporary a write to `path` goes through: "<path>.tmp.<pid>". A crash can leave one behind;
// is_temp_file_name recognises them so a run can clear its folder.
std::filesystem::path temp_path_for(const std::filesystem::path& path);
bool is_temp_file_name(const std::string& file_name);

// A UsageError naming `path` unless it is absent or a regular file: an output never replaces a
// device, FIFO, socket or directory (rename() would). write_atomically checks it first.
void require_replaceable(const std::filesystem::path& path);
// A UsageError naming `path` unless its folder exists: for outputs a user names (--json), which
// get no folder created for them.
void require_parent_folder(const std::filesystem::path& path);

// Calls write(temp_path), syncs the temporary to disk and renames it over `path`. On any failure
// (the writer's exception, ENOSPC, EIO) the temporary is removed, `path` keeps its previous
// content, and an Error names `path` and the reason.
void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::filesystem::path& temp_path)>& write);

void write_bytes_atomically(const std::filesystem::path& path, const void* data, std::size_t size);
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

// Writes all of `data` to `path` (created or truncated) with POSIX calls, so a failure reports
// errno's reason ("No space left on device") instead of a stream's bare failbit.
void write_file_fully(const std::filesystem::path& path, const void* data, std::size_t size);

// Throws an Error naming `path` unless it is a regular file (or a link to one): a missing path,
// a directory and a FIFO or device each get their own message.
void require_regular_file(const std::filesystem::path& path);

std::string read_text_file(const std::filesystem::path& path);

}  // namespace shrink::core
