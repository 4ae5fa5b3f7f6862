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
    out.push_back({item.key().toStringRef(), item.value().toTensor(), false});
  }
  return out;
}

}  // namespace shrink::io
