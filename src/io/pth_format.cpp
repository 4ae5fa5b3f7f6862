// .pth: written by torch::pickle_save, read by shrink's own pickle reader, in torch.save's format.
#include "io/pth_format.h"

#include <torch/torch.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/torch_pickle.h"

namespace shrink::io {

namespace fs = std::filesystem;
using core::cat;

void write_pth(const fs::path& path, const StateDict& sd) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& e : sd) dict.insert(e.name, e.tensor.detach().cpu());
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  core::write_bytes_atomically(path, bytes.data(), bytes.size());
}

StateDict read_pth(const fs::path& path) { return read_torch_pickle(core::read_text_file(path), path.string()); }

}  // namespace shrink::io
