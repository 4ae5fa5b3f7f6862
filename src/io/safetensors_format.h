// .safetensors (Hugging Face's tensor file: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}}, then the raw little-endian bytes): how pretrained models
// are published, read with every size and offset checked before anything is allocated.
#pragma once

#include <filesystem>
#include <string>

#include "io/state_dict.h"

namespace shrink::io {

// Every tensor of the file, by name (entries are parameters: the format marks no buffers).
// A truncated, oversized, overlapping or otherwise inconsistent file is an Error naming the file
// and what is wrong.
StateDict read_safetensors(const std::filesystem::path& path);

// Writes `sd` (dense, contiguous, little-endian) atomically; the header lists tensors in `sd`'s
// order and carries `metadata` ({"format": "pt"} as PyTorch's writer puts it).
void write_safetensors(const std::filesystem::path& path, const StateDict& sd);

}  // namespace shrink::io
