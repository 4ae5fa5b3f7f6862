// Reader for labelled datasets stored in HDF5: one dataset of samples, one of labels.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>

namespace shrink::data {

struct Hdf5Arrays {
  at::Tensor samples;  // uint8 or float32, [N, ...] as stored
  at::Tensor labels;   // int64 [N]
};

// Reads `samples_name` (uint8 or float32, rank 2 to 4) and `labels_name` (any integer type,
// rank 1) from `path`. Types, ranks and the sample count are checked before reading.
Hdf5Arrays read_hdf5_arrays(const std::filesystem::path& path, const std::string& samples_name,
                            const std::string& labels_name);

}  // namespace shrink::data
