// .pth through torch::pickle_save/pickle_load, the format Python's torch.save/torch.load use.
#include "io/pth_format.h"

#include <torch/torch.h>

#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace shrink::io {

namespace fs = std::filesystem;
using core::cat;

void write_pth(const fs::path& path, const StateDict& sd) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& e : sd) dict.insert(e.name, e.tensor.detach().cpu());
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  core::write_atomically(path, [&](const fs::path& temp) {
    std::ofstream out(temp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    SHRINK_CHECK(out, "failed writing ", temp);
  });
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
  std::ifstream in(path, std::ios::binary);
  SHRINK_CHECK(in, path.string(), ": cannot open");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw core::Error(cat(path.string(), ": cannot read .pth (corrupt or truncated?): ", what.substr(0, what.find('\n'))));
  }
  if (!value.isGenericDict()) throw core::Error(cat(path.string(), ": expected a dict of tensors, found ", value.tagKind()));
  StateDict out;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      throw core::Error(cat(path.string(), ": expected a dict of name → tensor; found a ", item.key().tagKind(),
                            " → ", item.value().tagKind(), " entry"));
    }
    check_within_storage(item.value().toTensor(), cat(path.string(), ": '", item.key().toStringRef(), "'"));
    out.push_back({item.key().toStringRef(), item.value().toTensor(), false});
  }
  return out;
}

}  // namespace shrink::io
