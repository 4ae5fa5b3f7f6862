// .h5: one HDF5 dataset per tensor, named by its dotted name, dtype and shape kept.
#pragma once

#include <filesystem>

#include "io/state_dict.h"

namespace shrink::io {

void write_h5(const std::filesystem::path& path, const StateDict& sd);
StateDict read_h5(const std::filesystem::path& path);

}  // namespace shrink::io
