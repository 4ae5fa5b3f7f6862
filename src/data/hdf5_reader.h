// Reader for datasets stored in HDF5: one dataset of samples, and one of labels unless the samples
// have none (text for embedding distillation).
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>

namespace shrink::data {

struct Hdf5Arrays {
  at::Tensor samples;  // uint8 or float32 [N, ...] as stored; int64 [N, L] for token ids
  at::Tensor labels;   // int64 [N]; undefined when `labels_name` is empty
};

// Reads `samples_name` (uint8 or float32 of rank 2 to 4, or token ids: a signed integer type of 4 or
// 8 bytes, rank 2, none negative) and `labels_name` (any integer type, rank 1; none when empty) from
// `path`. Types, ranks and the sample count are checked before reading.
Hdf5Arrays read_hdf5_arrays(const std::filesystem::path& path, const std::string& samples_name,
                            const std::string& labels_name);

}  // namespace shrink::data
