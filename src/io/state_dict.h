// state_dicts: PyTorch-ordered (name, tensor) lists, taken from and loaded into modules, and saved
// or loaded in any of shrink's formats (.pt, .pth, .h5), chosen by file extension.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/enum_names.h"
#include "io/sparse_tensor.h"

namespace shrink::io {

struct Entry {
  std::string name;  // dotted, as PyTorch names it: classifier.0.weight
  at::Tensor tensor;
  bool is_buffer = false;
};

// In PyTorch's order: a module's own parameters, then its own buffers, then each child in turn.
using StateDict = std::vector<Entry>;

enum class Format { kPt, kPth, kH5 };
// Named by their file extensions.
inline const core::EnumNames<Format>& enum_names(Format) {
  static const core::EnumNames<Format> names{{Format::kPt, "pt"}, {Format::kPth, "pth"}, {Format::kH5, "h5"}};
  return names;
}

// PyTorch's pruning layout: a pruned parameter `w` keeps its mask in the buffer `w_mask`.
inline constexpr const char* kMaskSuffix = "_mask";
// The parameter `name` masks (`w` for `w_mask`); empty when `name` is not a mask's.
std::string masked_parameter(const std::string& name);

// How an entry is stored in a file: compressed (see sparse_tensor.h), or — for a pruning mask that
// equals its weight's nonzero pattern — as a reference to that weight, which costs nothing.
struct StoredEntry {
  std::string name;
  bool is_buffer = false;
  SparseTensor data;
  std::string pattern_of;  // non-empty: this mask is (pattern_of != 0); `data` is unused
};

// With compress, tensors that have a `<name>_mask` companion (pruned ones) and int8 weights take
// the smallest encoding; everything else stays dense, so an unpruned float model's .pt still loads
// with torch::load. compress = false keeps every tensor dense (the .pth format, for Python).
std::vector<StoredEntry> encode_entries(const StateDict& sd, bool compress);
// Decodes and resolves pattern references; throws an Error naming `source` on inconsistencies.
StateDict decode_entries(const std::vector<StoredEntry>& entries, const std::string& source);
// A file's entries as stored (for `shrink inspect`), without decoding, and the model description
// saved with it (null when there is none).
struct StoredFile {
  std::vector<StoredEntry> entries;
  nlohmann::json description;
};
StoredFile read_stored_file(const std::filesystem::path& path);

StateDict state_dict(const torch::nn::Module& module);
// Copies `sd` into `module`. Every missing key, unexpected key, shape or dtype mismatch is listed
// in one Error that names `source` (a file path, for messages); NaN or infinite values in a
// floating-point tensor are a UsageError naming each such tensor unless allowed below.
void load_state_dict(torch::nn::Module& module, const StateDict& sd, const std::string& source);

// Process-wide, like allow_torchscript: the CLI's --allow-non-finite.
void allow_non_finite_weights(bool allowed);

// .pt → kPt, .pth → kPth, .h5/.hdf5 → kH5; anything else is a UsageError.
Format format_for(const std::filesystem::path& path);

// Atomic: the file appears complete or not at all. `description` (a model blueprint, or null) is
// kept inside .pt and .h5 files; a .pth gets it in pth_sidecar(path), with the names of its
// buffers, which a pickled dict of tensors cannot mark.
void save_state_dict(const std::filesystem::path& path, const StateDict& sd,
                     const nlohmann::json& description = nullptr);
// Saves a module's state. A .pt written this way also holds empty entries for parameterless
// children (ReLU, pooling), which plain LibTorch's torch::load(module, path) requires.
void save_module(const std::filesystem::path& path, const torch::nn::Module& module,
                 const nlohmann::json& description = nullptr);
// Reads by extension (also .safetensors, read-only); a missing, truncated or foreign file throws an
// Error naming it.
StateDict load_state_dict_file(const std::filesystem::path& path);
// `<file>.json` beside a .pth.
std::filesystem::path pth_sidecar(const std::filesystem::path& pth);

}  // namespace shrink::io
