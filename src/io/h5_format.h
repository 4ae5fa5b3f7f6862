// .h5: one HDF5 dataset per dense tensor, named by its dotted name, dtype and shape kept; a
// compressed tensor is a group of that name holding its parts (docs/formats.md).
#pragma once

#include <filesystem>

#include "io/state_dict.h"

namespace shrink::io {

// `description` (null for none) is kept as the file's `model` attribute (JSON text).
void write_h5(const std::filesystem::path& path, const std::vector<StoredEntry>& entries,
              const nlohmann::json& description = nullptr);
std::vector<StoredEntry> read_h5(const std::filesystem::path& path, nlohmann::json* description = nullptr);

}  // namespace shrink::io
