// .pt writer/reader over torch::serialize archives, one nested archive per dotted name component.
#include "io/pt_format.h"

#include <torch/torch.h>

#include "core/atomic_file.h"
#include "core/error.h"

namespace shrink::io {

namespace fs = std::filesystem;
using core::cat;

namespace {

// Module::save writes a child's tensors into a nested archive under the child's name; mirroring
// that layout is what makes torch::load(module, path) work on these files.
struct Node {
  std::vector<const Entry*> tensors;
  std::vector<std::pair<std::string, Node>> children;

  Node& child(const std::string& name) {
    for (auto& c : children) {
      if (c.first == name) return c.second;
    }
    children.emplace_back(name, Node{});
    return children.back().second;
  }
};

void write_tree(const Node& node, torch::serialize::OutputArchive& archive) {
  for (const auto* e : node.tensors) archive.write(e->name.substr(e->name.rfind('.') + 1), e->tensor, e->is_buffer);
  for (const auto& c : node.children) {
    torch::serialize::OutputArchive sub;
    write_tree(c.second, sub);
    archive.write(c.first, sub);
  }
}

void read_tree(torch::serialize::InputArchive& archive, const std::string& prefix, StateDict& out) {
  for (const auto& key : archive.keys()) {
    at::Tensor t;
    if (archive.try_read(key, t, /*is_buffer=*/false)) {
      out.push_back({prefix + key, t, false});
    } else if (archive.try_read(key, t, /*is_buffer=*/true)) {
      out.push_back({prefix + key, t, true});
    } else {
      torch::serialize::InputArchive sub;
      if (archive.try_read(key, sub)) read_tree(sub, prefix + key + ".", out);
    }
  }
}

}  // namespace

void write_pt(const fs::path& path, const StateDict& sd) {
  Node root;
  for (const auto& e : sd) {
    Node* node = &root;
    size_t start = 0;
    for (size_t dot = e.name.find('.'); dot != std::string::npos; dot = e.name.find('.', start)) {
      node = &node->child(e.name.substr(start, dot - start));
      start = dot + 1;
    }
    node->tensors.push_back(&e);
  }
  torch::serialize::OutputArchive archive;
  write_tree(root, archive);
  core::write_atomically(path, [&](const fs::path& temp) { archive.save_to(temp.string()); });
}

void write_pt_module(const fs::path& path, const torch::nn::Module& module) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  core::write_atomically(path, [&](const fs::path& temp) { archive.save_to(temp.string()); });
}

StateDict read_pt(const fs::path& path) {
  StateDict out;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    read_tree(archive, "", out);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw core::Error(cat(path.string(), ": cannot read .pt archive (corrupt or truncated?): ",
                          what.substr(0, what.find('\n'))));
  }
  return out;
}

}  // namespace shrink::io
