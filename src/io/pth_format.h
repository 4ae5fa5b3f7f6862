// .pth: a pickled {name: tensor} dict in PyTorch's zip format; Python's torch.load opens it with
// no shrink code, and model.load_state_dict accepts it.
#pragma once

#include <filesystem>

#include "io/state_dict.h"

namespace shrink::io {

void write_pth(const std::filesystem::path& path, const StateDict& sd);
StateDict read_pth(const std::filesystem::path& path);

}  // namespace shrink::io
