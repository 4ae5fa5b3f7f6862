// Module ↔ state_dict conversion and format dispatch.
#include "io/state_dict.h"

#include <torch/torch.h>

#include <atomic>
#include <fstream>
#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/h5_format.h"
#include "io/pt_format.h"
#include "io/pth_format.h"
#include "io/safetensors_format.h"

namespace shrink::io {

namespace fs = std::filesystem;
using core::cat;

namespace {

// Undefined tensors are left out, as PyTorch leaves out buffers set to None.
void collect(const torch::nn::Module& m, const std::string& prefix, StateDict& out) {
  for (const auto& p : m.named_parameters(/*recurse=*/false)) {
    if (p.value().defined()) out.push_back({prefix + p.key(), p.value(), false});
  }
  for (const auto& b : m.named_buffers(/*recurse=*/false)) {
    if (b.value().defined()) out.push_back({prefix + b.key(), b.value(), true});
  }
  for (const auto& c : m.named_children()) collect(*c.value(), prefix + c.key() + ".", out);
}

std::string shape_str(const at::Tensor& t) { return cat(t.sizes()); }

}  // namespace

StateDict state_dict(const torch::nn::Module& module) {
  StateDict out;
  collect(module, "", out);
  return out;
}

namespace {
std::atomic<bool> g_allow_non_finite{false};
}  // namespace

void allow_non_finite_weights(bool allowed) { g_allow_non_finite = allowed; }

void load_state_dict(torch::nn::Module& module, const StateDict& sd, const std::string& source) {
  std::map<std::string, const at::Tensor*> given;
  for (const auto& e : sd) given[e.name] = &e.tensor;
  auto target = state_dict(module);
  std::vector<std::string> problems;
  std::map<std::string, bool> expected;
  for (const auto& e : target) {
    expected[e.name] = true;
    const auto it = given.find(e.name);
    if (it == given.end()) {
      problems.push_back(cat("missing tensor '", e.name, "'"));
    } else if (it->second->sizes() != e.tensor.sizes()) {
      problems.push_back(
          cat("'", e.name, "' has shape ", shape_str(*it->second), ", the model expects ", shape_str(e.tensor)));
    } else if (it->second->scalar_type() != e.tensor.scalar_type()) {
      problems.push_back(
          cat("'", e.name, "' has dtype ", it->second->scalar_type(), ", the model expects ", e.tensor.scalar_type()));
    }
  }
  for (const auto& e : sd) {
    if (!expected.count(e.name)) problems.push_back(cat("unexpected tensor '", e.name, "'"));
  }
  // A file of 100,000 tensors that all mismatch gives a readable message: the first few and a count.
  constexpr size_t kListed = 20;
  const auto list = [&](const std::string& heading) {
    std::string msg =
        cat(source, ": ", heading, " (", problems.size(), " problem", problems.size() == 1 ? "" : "s", "):");
    for (size_t i = 0; i < std::min(problems.size(), kListed); ++i) msg += "\n  " + problems[i];
    if (problems.size() > kListed) msg += cat("\n  ... and ", problems.size() - kListed, " more");
    return msg;
  };
  if (!problems.empty()) throw core::Error(list("state_dict does not fit the model"));
  // NaN or infinite weights come from a diverged training or a damaged file; either way every
  // output would be NaN. Refused unless asked for (allow_non_finite_weights).
  if (!g_allow_non_finite.load()) {
    for (const auto& e : sd) {
      if (!e.tensor.is_floating_point() || e.tensor.numel() == 0) continue;
      const auto t = e.tensor.detach();
      const int64_t nan = t.isnan().sum().item<int64_t>();
      const int64_t inf = t.isinf().sum().item<int64_t>();
      if (nan + inf > 0) {
        problems.push_back(cat("'", e.name, "' has ", nan, " NaN and ", inf, " infinite values (of ", t.numel(), ")"));
      }
    }
    if (!problems.empty()) {
      throw core::UsageError(list("non-finite weights") +
                             "\n  (a diverged training or a damaged file; --allow-non-finite loads them anyway)");
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& e : target) e.tensor.copy_(*given.at(e.name));
}

Format format_for(const fs::path& path) {
  const auto ext = path.extension().string();
  if (ext == ".pt") return Format::kPt;
  if (ext == ".pth") return Format::kPth;
  if (ext == ".h5" || ext == ".hdf5") return Format::kH5;
  if (ext == ".onnx") {
    // An export shrink wrote is one-way: say where it runs and what shrink reads instead.
    throw core::UsageError(cat(path.string(),
                               ": an ONNX graph is for ONNX Runtime (docs/python/onnx_eval.py evaluates one); "
                               "shrink reads the state_dict it was exported from (.pt, .pth or .h5)"));
  }
  throw core::UsageError(cat(path.string(), ": unknown state_dict format '", ext, "' (expected .pt, .pth or .h5)"));
}

std::string masked_parameter(const std::string& name) {
  const std::string suffix = kMaskSuffix;
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return "";
  return name.substr(0, name.size() - suffix.size());
}

namespace {

// A `<w>_mask` entry that is exactly (w != 0): storable as a reference to w.
bool is_pattern_mask(const Entry& mask, const at::Tensor* base) {
  if (!base || base->sizes() != mask.tensor.sizes()) return false;
  const auto m = mask.tensor.detach().cpu();
  return torch::equal(m.ne(0), base->detach().cpu().ne(0)) && m.eq(0).logical_or(m.eq(1)).all().item<bool>();
}

constexpr const char* kSidecarSchema = "shrink.pth_sidecar/1";

void write_sidecar(const fs::path& pth, const StateDict& sd, const nlohmann::json& description) {
  auto buffers = nlohmann::json::array();
  for (const auto& e : sd) {
    if (e.is_buffer) buffers.push_back(e.name);
  }
  nlohmann::json j = {{"schema", kSidecarSchema}, {"buffers", buffers}};
  if (!description.is_null()) j["model"] = description;
  core::write_text_atomically(pth_sidecar(pth), j.dump(2) + "\n");
}

// The sidecar of a .pth, or null when it has none (a .pth from PyTorch).
nlohmann::json read_sidecar(const fs::path& pth) {
  const fs::path side = pth_sidecar(pth);
  std::error_code ec;
  if (!fs::is_regular_file(side, ec)) return nullptr;
  try {
    auto j = nlohmann::json::parse(core::read_text_file(side));
    if (j.value("schema", "") != kSidecarSchema || !j.at("buffers").is_array()) {
      throw core::Error(cat("not a shrink .pth sidecar (schema '", kSidecarSchema, "')"));
    }
    return j;
  } catch (const nlohmann::json::exception& e) {
    throw core::Error(cat(side.string(), ": unreadable: ", e.what()));
  } catch (const core::Error& e) {
    throw core::Error(cat(side.string(), ": ", e.what()));
  }
}

void save(const fs::path& path, const StateDict& sd, const torch::nn::Module* structure,
          const nlohmann::json& description) {
  switch (format_for(path)) {
    case Format::kPt:
      return write_pt(path, encode_entries(sd, true), structure, description);
    case Format::kPth:
      write_pth(path, sd);
      return write_sidecar(path, sd, description);
    case Format::kH5:
      return write_h5(path, encode_entries(sd, true), description);
  }
}

}  // namespace

std::vector<StoredEntry> encode_entries(const StateDict& sd, bool compress) {
  std::map<std::string, const at::Tensor*> by_name;
  for (const auto& e : sd) by_name[e.name] = &e.tensor;
  std::vector<StoredEntry> out;
  for (const auto& e : sd) {
    StoredEntry s;
    s.name = e.name;
    s.is_buffer = e.is_buffer;
    if (const std::string base = masked_parameter(e.name); compress && !base.empty()) {
      const auto it = by_name.find(base);
      if (is_pattern_mask(e, it == by_name.end() ? nullptr : it->second)) {
        s.pattern_of = base;
        s.data.shape = e.tensor.sizes().vec();
        s.data.dtype = e.tensor.scalar_type();
        out.push_back(std::move(s));
        continue;
      }
    }
    // Pruned tensors, and int8 weights (a pruned model's zeros survive quantization).
    if (compress && (by_name.count(e.name + kMaskSuffix) || e.tensor.scalar_type() == at::kChar)) {
      s.data = encode(e.tensor);
    } else {
      s.data.shape = e.tensor.sizes().vec();
      s.data.dtype = e.tensor.scalar_type();
      s.data.values = e.tensor.detach().cpu().contiguous();
    }
    out.push_back(std::move(s));
  }
  return out;
}

StateDict decode_entries(const std::vector<StoredEntry>& entries, const std::string& source) {
  StateDict out;
  std::map<std::string, size_t> index;
  try {
    for (const auto& e : entries) {
      index[e.name] = out.size();
      out.push_back({e.name, e.pattern_of.empty() ? decode(e.data, e.name) : at::Tensor(), e.is_buffer});
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& e = entries[i];
      if (e.pattern_of.empty()) continue;
      const auto it = index.find(e.pattern_of);
      if (it == index.end() || !out[it->second].tensor.defined()) {
        throw core::Error(cat("'", e.name, "' refers to missing tensor '", e.pattern_of, "'"));
      }
      const auto& base = out[it->second].tensor;
      if (base.sizes().vec() != e.data.shape)
        throw core::Error(cat("'", e.name, "' and '", e.pattern_of, "' differ in shape"));
      out[i].tensor = base.ne(0).to(e.data.dtype);
    }
  } catch (const core::Error& err) {
    throw core::Error(cat(source, ": ", err.what()));
  }
  return out;
}

void save_state_dict(const fs::path& path, const StateDict& sd, const nlohmann::json& description) {
  save(path, sd, nullptr, description);
}

void save_module(const fs::path& path, const torch::nn::Module& module, const nlohmann::json& description) {
  save(path, state_dict(module), &module, description);
}

fs::path pth_sidecar(const fs::path& pth) { return fs::path(pth.string() + ".json"); }

StoredFile read_stored_file(const fs::path& path) {
  core::require_regular_file(path);
  // Read, never written: a pretrained model as Hugging Face publishes it, with no blueprint.
  if (path.extension() == ".safetensors") return {encode_entries(read_safetensors(path), false), nullptr};
  const Format f = format_for(path);
  // Check the signature first so a mislabelled file gets a clear message, not a parser's.
  char magic[8] = {};
  std::ifstream(path, std::ios::binary).read(magic, sizeof magic);
  const bool zip = magic[0] == 'P' && magic[1] == 'K';
  const bool hdf5 = std::string(magic, 8) == std::string("\x89HDF\r\n\x1a\n", 8);
  // torch.save's format before PyTorch 1.6 (and with _use_new_zipfile_serialization=False): a
  // pickle (protocol 2) whose first object is the long 0x1950a86a20f9469cfc6c.
  const bool legacy = std::string(magic, 8) == std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46", 8);
  if (f != Format::kH5 && legacy) {
    throw core::UsageError(
        cat(path.string(),
            ": PyTorch's legacy (pre-1.6, non-zip) torch.save format, which shrink does not read; "
            "re-save it in Python with torch.save(torch.load(path), path) from PyTorch 1.6 or later"));
  }
  if ((f == Format::kH5 && !hdf5) || (f != Format::kH5 && !zip)) {
    throw core::Error(cat(path.string(), ": not a ", f == Format::kH5 ? "HDF5" : "PyTorch zip-archive",
                          " file (wrong signature; corrupt or mislabelled)"));
  }
  StoredFile out;
  switch (f) {
    case Format::kPt:
      out.entries = read_pt(path, &out.description);
      return out;
    case Format::kH5:
      out.entries = read_h5(path, &out.description);
      return out;
    case Format::kPth:
      break;
  }
  StateDict sd = read_pth(path);
  const auto side = read_sidecar(path);
  if (!side.is_null()) {
    for (auto& e : sd) {
      for (const auto& b : side["buffers"]) e.is_buffer = e.is_buffer || b == e.name;
    }
    out.description = side.value("model", nlohmann::json());
  }
  out.entries = encode_entries(sd, false);
  return out;
}

StateDict load_state_dict_file(const fs::path& path) {
  return decode_entries(read_stored_file(path).entries, path.string());
}

}  // namespace shrink::io
