// Reads the state_dicts Python's torch.save writes (shrink's .pth) and the module archives
// LibTorch's torch::serialize::OutputArchive writes (shrink's .pt): a zip of a pickle and its
// tensor storages, decoded by a small pickle machine that knows only what these files need, so no
// TorchScript code in a file is ever compiled.
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

// One attribute of a module archive, named by its dotted path ("classifier.0.weight"): a tensor,
// or a string when `is_text`.
struct ArchiveValue {
  std::string name;
  at::Tensor tensor;
  std::string text;
  bool is_text = false;
};

// Reads what torch::serialize::OutputArchive::save_to writes: __torch__ module objects whose
// attributes are tensors, strings and nested modules, in file order. The TorchScript code records
// are not read; storages and views are checked as read_torch_pickle checks them.
std::vector<ArchiveValue> read_torch_module_archive(std::string_view archive, const std::string& what);

}  // namespace shrink::io
