// .pt: LibTorch's own archive, laid out as Module::save lays it out, so torch::load(model, path)
// reads it in plain LibTorch code.
#pragma once

#include <filesystem>

#include "io/state_dict.h"

namespace shrink::io {

void write_pt(const std::filesystem::path& path, const StateDict& sd);
// Module::save's exact layout, including empty archives for parameterless children.
void write_pt_module(const std::filesystem::path& path, const torch::nn::Module& module);
StateDict read_pt(const std::filesystem::path& path);

}  // namespace shrink::io
