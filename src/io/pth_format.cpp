// .pth: written by LibTorch's pickler, read by shrink's own pickle reader, in torch.save's format.
#include "io/pth_format.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
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
  // torch::pickle_save, but with the dict as a plain dict: pickle_save wraps it in
  // torch.jit._pickle.restore_type_tag(..., "Dict[str, Tensor]"), a call torch.load refuses under
  // weights_only=True, PyTorch's default since 2.6.
  std::vector<char> pickle;
  torch::jit::Pickler pickler([&](const char* bytes, size_t n) { pickle.insert(pickle.end(), bytes, bytes + n); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                              /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(dict));
  pickler.stop();
  std::vector<char> file;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t n) {
    file.insert(file.end(), static_cast<const char*>(bytes), static_cast<const char*>(bytes) + n);
    return n;
  });
  torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(), writer);
  writer.writeEndOfFile();
  core::write_bytes_atomically(path, file.data(), file.size());
}

StateDict read_pth(const fs::path& path) { return read_torch_pickle(core::read_text_file(path), path.string()); }

}  // namespace shrink::io
