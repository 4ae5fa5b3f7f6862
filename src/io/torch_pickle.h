// Reads the state_dicts Python's torch.save writes (and shrink's .pth): a zip of a pickle and
// its tensor storages, decoded by a small pickle machine that knows only what a state_dict needs.
#pragma once

#include <string>
#include <string_view>

#include "io/state_dict.h"

namespace shrink::io {

// `archive` is the whole file. Accepts a dict or collections.OrderedDict (torch.save of
// model.state_dict(), its _metadata ignored) of name → tensor or Parameter, any pickle protocol
// from 2. Every storage is checked against its record and every view against its storage before
// use; anything else (another object, a quantized or CUDA-only storage) is an Error starting
// with `what` that names the entry.
StateDict read_torch_pickle(std::string_view archive, const std::string& what);

}  // namespace shrink::io
