// .pt: LibTorch's archive, one nested archive per submodule as Module::save lays it out. Dense
// tensors sit under their leaf name, so torch::load(module, path) reads a dense model; compressed
// ones are stored as `<leaf>__meta`, `<leaf>__values`, ... and need shrink's reader.
#pragma once

#include <filesystem>

#include "io/state_dict.h"

namespace shrink::io {

// `structure`, when given, adds empty archives for parameterless children (ReLU, pooling), which
// torch::load(module, path) requires.
// `description` (null for none) is kept as the string entry `__shrink_model__`, which
// torch::load ignores.
void write_pt(const std::filesystem::path& path, const std::vector<StoredEntry>& entries,
              const torch::nn::Module* structure = nullptr, const nlohmann::json& description = nullptr);
std::vector<StoredEntry> read_pt(const std::filesystem::path& path, nlohmann::json* description = nullptr);

}  // namespace shrink::io
