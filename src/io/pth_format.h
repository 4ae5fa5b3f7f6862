// .pth: a pickled {name: tensor} dict in PyTorch's zip format; Python's torch.load opens it with
// no shrink code, and model.load_state_dict accepts it.
#pragma once

#include <filesystem>

#include "io/state_dict.h"

namespace shrink::io {

void write_pth(const std::filesystem::path& path, const StateDict& sd);
StateDict read_pth(const std::filesystem::path& path);

// Throws an Error naming `where` unless every element `t` addresses lies inside its storage: a
// changed byte in a file's stride or offset would otherwise read (or crash) past the storage.
void check_within_storage(const at::Tensor& t, const std::string& where);

}  // namespace shrink::io
