// .pth through torch::pickle_save/pickle_load, the format Python's torch.save/torch.load use.
#include "io/pth_format.h"

#include <torch/torch.h>

#include <fstream>

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

void check_within_storage(const at::Tensor& t, const std::string& where) {
  if (!t.defined() || t.numel() == 0 || t.is_quantized() || t.layout() != at::kStrided) return;
  const int64_t item = static_cast<int64_t>(t.element_size());
  const int64_t storage_elements = static_cast<int64_t>(t.storage().nbytes()) / item;
  int64_t last = t.storage_offset();
  bool overflow = last < 0;
  for (int64_t d = 0; d < t.dim() && !overflow; ++d) {
    int64_t reach = 0;
    overflow = t.stride(d) < 0 || __builtin_mul_overflow(t.size(d) - 1, t.stride(d), &reach) ||
               __builtin_add_overflow(last, reach, &last);
  }
  if (overflow || last >= storage_elements) {
    throw core::Error(cat(where, ": tensor of shape ", t.sizes(), ", strides ", t.strides(), " and offset ", t.storage_offset(),
                          " reaches past its storage of ", storage_elements, " elements (corrupt file?)"));
  }
}

StateDict read_pth(const fs::path& path) {
  return read_torch_pickle(core::read_text_file(path), path.string());
}

}  // namespace shrink::io
