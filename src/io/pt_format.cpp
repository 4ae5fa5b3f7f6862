// .pt writer/reader over torch::serialize archives.
#include "io/pt_format.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/pth_format.h"
#include "io/torch_zip.h"

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
  if (!e.pattern_of.empty() && e.pattern_of.substr(0, e.pattern_of.rfind('.') + 1) != e.name.substr(0, e.name.rfind('.') + 1)) {
    throw core::Error(cat("'", e.name, "' refers to a tensor of another module"));
  }
  const int64_t code = !e.pattern_of.empty() ? kCodePattern : d.encoding == Encoding::kCsr ? kCodeCsr : kCodeBitmask;
  std::vector<int64_t> meta = {code, static_cast<int64_t>(d.dtype), d.index_bytes, d.ptr_bytes, e.is_buffer ? 1 : 0,
                               static_cast<int64_t>(d.shape.size())};
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

at::Tensor read_tensor(torch::serialize::InputArchive& a, const std::string& key) {
  at::Tensor t;
  if (!a.try_read(key, t, false) && !a.try_read(key, t, true)) throw core::Error(cat("missing archive entry '", key, "'"));
  check_within_storage(t, cat("'", key, "'"));
  return t;
}

void read_tree(torch::serialize::InputArchive& archive, const std::string& prefix, std::vector<StoredEntry>& out) {
  const std::string meta_suffix = std::string(kSep) + "meta";
  for (const auto& key : archive.keys()) {
    if (ends_with(key, meta_suffix)) {
      const std::string leaf = key.substr(0, key.size() - meta_suffix.size());
      const auto meta = read_tensor(archive, key);
      if (meta.scalar_type() != at::kLong || meta.dim() != 1 || meta.numel() < 6 ||
          meta.numel() != 6 + meta[5].item<int64_t>()) {
        throw core::Error(cat("'", prefix + leaf, "': malformed compression header"));
      }
      const auto m = meta.accessor<int64_t, 1>();
      StoredEntry e;
      e.name = prefix + leaf;
      e.is_buffer = m[4] != 0;
      if (m[1] < 0 || m[1] >= static_cast<int64_t>(c10::ScalarType::NumOptions)) {
        throw core::Error(cat("'", e.name, "': unknown dtype code ", m[1]));
      }
      e.data.dtype = static_cast<at::ScalarType>(m[1]);
      e.data.index_bytes = m[2];
      e.data.ptr_bytes = m[3];
      for (int64_t i = 0; i < m[5]; ++i) e.data.shape.push_back(m[6 + i]);
      if (m[0] == kCodePattern) {
        c10::IValue v;
        archive.read(leaf + kSep + "pattern_of", v);
        e.pattern_of = prefix + v.toStringRef();
      } else if (m[0] == kCodeCsr || m[0] == kCodeBitmask) {
        e.data.encoding = m[0] == kCodeCsr ? Encoding::kCsr : Encoding::kBitmask;
        e.data.values = read_tensor(archive, leaf + kSep + "values");
        if (m[0] == kCodeBitmask) {
          e.data.bitmask = read_tensor(archive, leaf + kSep + "bitmask");
        } else {
          e.data.col_indices = read_tensor(archive, leaf + kSep + "col_indices");
          e.data.row_ptr = read_tensor(archive, leaf + kSep + "row_ptr");
        }
      } else {
        throw core::Error(cat("'", e.name, "': unknown encoding code ", m[0]));
      }
      out.push_back(std::move(e));
      continue;
    }
    if (key.find(kSep) != std::string::npos) continue;  // a component, read with its header
    at::Tensor t;
    if (archive.try_read(key, t, false) || archive.try_read(key, t, true)) {
      check_within_storage(t, cat("'", prefix + key, "'"));  // read_pt adds the path
      StoredEntry e;
      e.name = prefix + key;
      e.data.shape = t.sizes().vec();
      e.data.dtype = t.scalar_type();
      e.data.values = t;
      out.push_back(std::move(e));
      continue;
    }
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, sub)) read_tree(sub, prefix + key + ".", out);
  }
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
    const std::string bytes = core::read_text_file(path);
    read_zip_index(bytes, path.string());  // bounds and checksums before LibTorch parses anything
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    read_tree(archive, "", out);
    const auto keys = archive.keys();
    const auto has = [&](const char* key) { return std::find(keys.begin(), keys.end(), key) != keys.end(); };
    if (has(kBuffersKey)) {
      c10::IValue v;
      archive.read(kBuffersKey, v);
      if (!v.isString()) throw core::Error("buffer list is not a string");
      std::set<std::string> buffers;
      std::istringstream lines(v.toStringRef());
      for (std::string line; std::getline(lines, line);) buffers.insert(line);
      for (auto& e : out) e.is_buffer = buffers.count(e.name) > 0;
    }
    if (description && has(kDescriptionKey)) {
      c10::IValue v;
      archive.read(kDescriptionKey, v);
      if (!v.isString()) throw core::Error("model description is not a string");
      *description = nlohmann::json::parse(v.toStringRef());
    }
  } catch (const core::Error& e) {
    const std::string what = e.what();
    throw core::Error(what.rfind(path.string() + ": ", 0) == 0 ? what : cat(path.string(), ": ", what));
  } catch (const nlohmann::json::exception& e) {
    throw core::Error(cat(path.string(), ": unreadable model description: ", e.what()));
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw core::Error(cat(path.string(), ": cannot read .pt archive (corrupt or truncated?): ",
                          what.substr(0, what.find('\n'))));
  } catch (const std::exception& e) {
    // The TorchScript reader under torch::serialize throws its own types on damaged code records.
    std::string what = e.what();
    what = what.substr(0, what.find_first_not_of("\n") == std::string::npos ? 0 : what.find('\n', what.find_first_not_of("\n")));
    throw core::Error(cat(path.string(), ": cannot read .pt archive (corrupt or truncated?): ", what));
  }
  return out;
}

}  // namespace shrink::io
