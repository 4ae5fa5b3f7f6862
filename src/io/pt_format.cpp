// .pt: written as a torch::serialize archive, read back by shrink's own archive reader.
#include "io/pt_format.h"

#include <torch/torch.h>

#include <map>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/torch_pickle.h"

namespace shrink::io {

namespace fs = std::filesystem;
using core::cat;

namespace {

constexpr const char* kSep = "__";
constexpr const char* kDescriptionKey = "__shrink_model__";
// LibTorch's archive reader cannot tell a buffer from a parameter, so the names of the buffers are
// kept beside the tensors (one per line); torch::load ignores the entry.
constexpr const char* kBuffersKey = "__shrink_buffers__";
enum MetaCode : int64_t { kCodeDense = 0, kCodeCsr = 1, kCodeBitmask = 2, kCodePattern = 3 };

struct Node {
  std::vector<const StoredEntry*> entries;
  std::vector<std::pair<std::string, Node>> children;

  Node& child(const std::string& name) {
    for (auto& c : children) {
      if (c.first == name) return c.second;
    }
    children.emplace_back(name, Node{});
    return children.back().second;
  }
};

Node& node_at(Node& root, const std::string& dotted_prefix) {
  Node* node = &root;
  size_t start = 0;
  while (start < dotted_prefix.size()) {
    size_t dot = dotted_prefix.find('.', start);
    if (dot == std::string::npos) dot = dotted_prefix.size();
    node = &node->child(dotted_prefix.substr(start, dot - start));
    start = dot + 1;
  }
  return *node;
}

std::string leaf_of(const std::string& name) { return name.substr(name.rfind('.') + 1); }

void write_entry(const StoredEntry& e, torch::serialize::OutputArchive& a) {
  const std::string leaf = leaf_of(e.name);
  const auto& d = e.data;
  if (e.pattern_of.empty() && d.encoding == Encoding::kDense) {
    a.write(leaf, d.values, e.is_buffer);
    return;
  }
  if (!e.pattern_of.empty() &&
      e.pattern_of.substr(0, e.pattern_of.rfind('.') + 1) != e.name.substr(0, e.name.rfind('.') + 1)) {
    throw core::Error(cat("'", e.name, "' refers to a tensor of another module"));
  }
  const int64_t code = !e.pattern_of.empty() ? kCodePattern : d.encoding == Encoding::kCsr ? kCodeCsr : kCodeBitmask;
  std::vector<int64_t> meta = {code,        static_cast<int64_t>(d.dtype), d.index_bytes,
                               d.ptr_bytes, e.is_buffer ? 1 : 0,           static_cast<int64_t>(d.shape.size())};
  meta.insert(meta.end(), d.shape.begin(), d.shape.end());
  a.write(leaf + kSep + "meta", torch::tensor(meta, torch::kLong));
  if (code == kCodePattern) {
    a.write(leaf + kSep + "pattern_of", c10::IValue(leaf_of(e.pattern_of)));
    return;
  }
  a.write(leaf + kSep + "values", d.values);
  if (code == kCodeBitmask) a.write(leaf + kSep + "bitmask", d.bitmask);
  if (code == kCodeCsr) {
    a.write(leaf + kSep + "col_indices", d.col_indices);
    a.write(leaf + kSep + "row_ptr", d.row_ptr);
  }
}

void write_tree(const Node& node, torch::serialize::OutputArchive& archive) {
  for (const auto* e : node.entries) write_entry(*e, archive);
  for (const auto& c : node.children) {
    torch::serialize::OutputArchive sub;
    write_tree(c.second, sub);
    archive.write(c.first, sub);
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string parent_of(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? std::string() : name.substr(0, dot + 1);
}

// The archive's attributes by dotted name; components of a compressed tensor are found by name.
class Attributes {
 public:
  explicit Attributes(const std::vector<ArchiveValue>& values) {
    for (const auto& v : values) {
      if (!by_name_.emplace(v.name, &v).second) throw core::Error(cat("'", v.name, "' appears twice"));
    }
  }
  const ArchiveValue* find(const std::string& name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  const at::Tensor& tensor(const std::string& name) const {
    const auto* v = find(name);
    if (!v) throw core::Error(cat("missing archive entry '", name, "'"));
    if (v->is_text) throw core::Error(cat("'", name, "' is a string, not a tensor"));
    return v->tensor;
  }
  const std::string& text(const std::string& name) const {
    const auto* v = find(name);
    if (!v) throw core::Error(cat("missing archive entry '", name, "'"));
    if (!v->is_text) throw core::Error(cat("'", name, "' is a tensor, not a string"));
    return v->text;
  }

 private:
  std::map<std::string, const ArchiveValue*> by_name_;
};

StoredEntry compressed_entry(const Attributes& attrs, const std::string& meta_name, const std::string& base) {
  const auto& meta = attrs.tensor(meta_name);
  if (meta.scalar_type() != at::kLong || meta.dim() != 1 || meta.numel() < 6 ||
      meta.numel() - 6 != meta[5].item<int64_t>()) {
    throw core::Error(cat("'", base, "': malformed compression header"));
  }
  const auto m = meta.accessor<int64_t, 1>();
  StoredEntry e;
  e.name = base;
  e.is_buffer = m[4] != 0;
  if (m[1] < 0 || m[1] >= static_cast<int64_t>(c10::ScalarType::NumOptions)) {
    throw core::Error(cat("'", base, "': unknown dtype code ", m[1]));
  }
  e.data.dtype = static_cast<at::ScalarType>(m[1]);
  e.data.index_bytes = m[2];
  e.data.ptr_bytes = m[3];
  for (int64_t i = 0; i < m[5]; ++i) e.data.shape.push_back(m[6 + i]);
  const std::string component = base + kSep;
  if (m[0] == kCodePattern) {
    e.pattern_of = parent_of(base) + attrs.text(component + "pattern_of");
  } else if (m[0] == kCodeCsr || m[0] == kCodeBitmask) {
    e.data.encoding = m[0] == kCodeCsr ? Encoding::kCsr : Encoding::kBitmask;
    e.data.values = attrs.tensor(component + "values");
    if (m[0] == kCodeBitmask) {
      e.data.bitmask = attrs.tensor(component + "bitmask");
    } else {
      e.data.col_indices = attrs.tensor(component + "col_indices");
      e.data.row_ptr = attrs.tensor(component + "row_ptr");
    }
  } else {
    throw core::Error(cat("'", base, "': unknown encoding code ", m[0]));
  }
  return e;
}

}  // namespace

void write_pt(const fs::path& path, const std::vector<StoredEntry>& entries, const torch::nn::Module* structure,
              const nlohmann::json& description) {
  Node root;
  if (structure) {
    for (const auto& m : structure->named_modules("", /*include_self=*/false)) node_at(root, m.key());
  }
  for (const auto& e : entries) {
    const auto dot = e.name.rfind('.');
    node_at(root, dot == std::string::npos ? "" : e.name.substr(0, dot)).entries.push_back(&e);
  }
  torch::serialize::OutputArchive archive;
  write_tree(root, archive);
  if (!description.is_null()) archive.write(kDescriptionKey, c10::IValue(description.dump()));
  std::string buffers;
  for (const auto& e : entries) {
    if (e.is_buffer) buffers += e.name + "\n";
  }
  archive.write(kBuffersKey, c10::IValue(buffers));
  // Serialised in memory, then written by shrink: LibTorch's file writer finishes the zip in its
  // destructor, which on a full disk throws there and aborts the process.
  std::string bytes;
  archive.save_to([&](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  core::write_bytes_atomically(path, bytes.data(), bytes.size());
}

std::vector<StoredEntry> read_pt(const fs::path& path, nlohmann::json* description) {
  std::vector<StoredEntry> out;
  try {
    // Read by shrink's own pickle machine: LibTorch's reader would compile the archive's
    // TorchScript code, a parser no crafted file should reach.
    const auto values = read_torch_module_archive(core::read_text_file(path), path.string());
    const Attributes attrs(values);
    const std::string meta_suffix = std::string(kSep) + "meta";
    for (const auto& v : values) {
      const std::string leaf = leaf_of(v.name);
      if (ends_with(v.name, meta_suffix)) {
        out.push_back(compressed_entry(attrs, v.name, v.name.substr(0, v.name.size() - meta_suffix.size())));
        continue;
      }
      if (leaf.find(kSep) != std::string::npos) continue;  // a component, read with its header; or shrink's own keys
      const auto& t = attrs.tensor(v.name);
      StoredEntry e;
      e.name = v.name;
      e.data.shape = t.sizes().vec();
      e.data.dtype = t.scalar_type();
      e.data.values = t;
      out.push_back(std::move(e));
    }
    if (attrs.find(kBuffersKey)) {
      std::set<std::string> buffers;
      std::istringstream lines(attrs.text(kBuffersKey));
      for (std::string line; std::getline(lines, line);) buffers.insert(line);
      for (auto& e : out) e.is_buffer = buffers.count(e.name) > 0;
    }
    if (description && attrs.find(kDescriptionKey)) *description = nlohmann::json::parse(attrs.text(kDescriptionKey));
  } catch (const core::Error& e) {
    const std::string what = e.what();
    throw core::Error(what.rfind(path.string() + ": ", 0) == 0 ? what : cat(path.string(), ": ", what));
  } catch (const nlohmann::json::exception& e) {
    throw core::Error(cat(path.string(), ": unreadable model description: ", e.what()));
  }
  return out;
}

}  // namespace shrink::io
