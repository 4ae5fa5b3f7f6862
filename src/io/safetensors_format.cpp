// .safetensors: header checks first (length, JSON, dtypes, shapes, offsets that tile the data
// without gaps or overlap), then one read per tensor into its own storage.
#include "io/safetensors_format.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"

namespace shrink::io {

namespace fs = std::filesystem;
using core::cat;
using nlohmann::json;

namespace {

// The format's cap on the header (safetensors' own reader refuses more than 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

const std::map<std::string, at::ScalarType>& safetensors_dtypes() {
  static const std::map<std::string, at::ScalarType> m{
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"I64", at::kLong},
      {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},  {"U8", at::kByte},       {"BOOL", at::kBool}};
  return m;
}

std::string dtype_name(at::ScalarType t) {
  for (const auto& [name, type] : safetensors_dtypes()) {
    if (type == t) return name;
  }
  throw core::Error(cat("safetensors: no dtype name for ", c10::toString(t)));
}

uint64_t read_u64_le(const unsigned char* b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

}  // namespace

StateDict read_safetensors(const fs::path& path) {
  core::require_regular_file(path);
  const std::string where = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw core::Error(cat(where, ": cannot open"));
  const uint64_t file_size = fs::file_size(path);
  if (file_size < 8) throw core::Error(cat(where, ": not a safetensors file (", file_size, " bytes, no header)"));
  unsigned char prefix[8];
  in.read(reinterpret_cast<char*>(prefix), 8);
  const uint64_t header_size = read_u64_le(prefix);
  if (header_size > kMaxHeaderBytes || header_size > file_size - 8) {
    throw core::Error(cat(where, ": safetensors header of ", header_size, " bytes does not fit the file's ", file_size,
                          " (corrupt or not a safetensors file)"));
  }
  std::string text(static_cast<size_t>(header_size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_size));
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw core::Error(cat(where, ": safetensors header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) throw core::Error(cat(where, ": safetensors header is not a JSON object"));
  const uint64_t data_size = file_size - 8 - header_size;

  struct Span {
    uint64_t begin, end;
    std::string name;
    at::ScalarType type;
    std::vector<int64_t> shape;
  };
  std::vector<Span> spans;
  for (const auto& item : header.items()) {
    // Named, not a structured binding: clang's C++17 lets no lambda capture those.
    const std::string& name = item.key();
    const auto& info = item.value();
    if (name == "__metadata__") continue;
    const auto bad = [&](const std::string& what) { return core::Error(cat(where, ": tensor '", name, "': ", what)); };
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      throw bad("needs dtype, shape and data_offsets");
    const auto& dt = info["dtype"];
    if (!dt.is_string() || !safetensors_dtypes().count(dt.get<std::string>()))
      throw bad(cat("unsupported dtype ", dt.dump(), " (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)"));
    const auto type = safetensors_dtypes().at(dt.get<std::string>());
    const auto& shape_json = info["shape"];
    if (!shape_json.is_array()) throw bad("shape is not a list");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& d : shape_json) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw bad(cat("shape ", shape_json.dump(), " has a dimension that is not a size"));
      const uint64_t n = d.get<uint64_t>();
      if (n != 0 && numel > std::numeric_limits<uint64_t>::max() / n)
        throw bad(cat("shape ", shape_json.dump(), " overflows"));
      numel *= n;
      shape.push_back(static_cast<int64_t>(n));
    }
    const auto& off = info["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw bad("data_offsets must be two unsigned integers");
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    const uint64_t elem = c10::elementSize(type);
    if (numel > std::numeric_limits<uint64_t>::max() / elem) throw bad(cat("shape ", shape_json.dump(), " overflows"));
    if (begin > end || end > data_size)
      throw bad(cat("data_offsets [", begin, ", ", end, "] fall outside the file's ", data_size, " data bytes"));
    if (end - begin != numel * elem)
      throw bad(cat("data_offsets hold ", end - begin, " bytes; ", dt.get<std::string>(), " ", shape_json.dump(),
                    " needs ", numel * elem));
    spans.push_back({begin, end, name, type, shape});
  }
  // The tensors tile the data: no two share bytes (the format forbids it; a crafted file would
  // otherwise alias, or claim the same bytes a million times over), no byte is left over. Checked
  // before any tensor is allocated, so what is allocated is at most the file's size.
  std::vector<Span> by_offset = spans;
  std::sort(by_offset.begin(), by_offset.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  uint64_t at_byte = 0;
  for (const auto& s : by_offset) {
    if (s.begin != at_byte) {
      throw core::Error(cat(where, ": tensor '", s.name, "' starts at data byte ", s.begin, ", expected ", at_byte,
                            s.begin < at_byte ? " (it overlaps the tensor before)" : " (a gap before it)"));
    }
    at_byte = s.end;
  }
  if (at_byte != data_size)
    throw core::Error(cat(where, ": ", data_size - at_byte, " data bytes after the last tensor (corrupt file)"));
  StateDict out;
  for (const auto& span : spans) {
    auto tensor = at::empty(span.shape, at::TensorOptions().dtype(span.type));
    in.seekg(static_cast<std::streamoff>(8 + header_size + span.begin));
    in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(span.end - span.begin));
    if (!in) throw core::Error(cat(where, ": tensor '", span.name, "': the file ends inside its data"));
    out.push_back({span.name, tensor, false});
  }
  return out;
}

void write_safetensors(const fs::path& path, const StateDict& sd) {
  json header = json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& e : sd) {
    SHRINK_CHECK(!e.tensor.is_quantized() && e.tensor.layout() == at::kStrided, "safetensors holds dense tensors; '",
                 e.name, "' is not");
    const auto t = e.tensor.detach().cpu().contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[e.name] = {
        {"dtype", dtype_name(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(t);
  }
  std::string text = header.dump();
  // Readers may map the data: pad the header with spaces so the data starts 8-byte aligned.
  while ((8 + text.size()) % 8 != 0) text += ' ';
  std::vector<char> file(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  std::memcpy(file.data() + 8, text.data(), text.size());
  char* at_data = file.data() + 8 + text.size();
  for (const auto& t : data) {
    const auto n = static_cast<size_t>(t.numel()) * t.element_size();
    if (n > 0) std::memcpy(at_data, t.data_ptr(), n);
    at_data += n;
  }
  core::write_bytes_atomically(path, file.data(), file.size());
}

}  // namespace shrink::io
