// Restore: blueprint → architecture → transforms → strict weight load.
#include "models/restore.h"

#include <map>
#include <mutex>

#include "compress/prune/l1_pruner.h"
#include "compress/quantize/quantizer.h"
#include "core/error.h"
#include "io/state_dict.h"
#include "models/registry.h"

namespace shrink::models {

using core::cat;

namespace {

struct Transforms {
  Transforms() {
    kinds[compress::prune::kMaskTransform] = [](Model& m, const nlohmann::json& settings) {
      compress::prune::ensure_mask_buffers(*m.module, settings.at("masks").get<std::vector<std::string>>());
    };
    kinds[compress::quantize::kInt8Transform] = compress::quantize::apply_int8_structure;
  }
  std::mutex mutex;
  std::map<std::string, TransformFn> kinds;
};

Transforms& transforms() {
  static Transforms t;
  return t;
}

TransformFn find_transform(const std::string& kind) {
  auto& t = transforms();
  std::lock_guard<std::mutex> lock(t.mutex);
  const auto it = t.kinds.find(kind);
  if (it == t.kinds.end()) {
    std::string known;
    for (const auto& kv : t.kinds) known += (known.empty() ? "" : ", ") + kv.first;
    throw core::Error(cat("unknown model transform '", kind, "' (known: ", known,
                          "); the file was written by a newer shrink or needs a registered transform"));
  }
  return it->second;
}

}  // namespace

void register_transform(const std::string& kind, TransformFn apply) {
  auto& t = transforms();
  std::lock_guard<std::mutex> lock(t.mutex);
  if (t.kinds.count(kind)) throw core::UsageError(cat("model transform '", kind, "' is registered already"));
  t.kinds[kind] = std::move(apply);
}

Model build(const Blueprint& blueprint) {
  Model m = build_model(blueprint.arch, blueprint.options, blueprint.input);
  for (const auto& t : blueprint.transforms) {
    try {
      find_transform(t.kind)(m, t.settings);
    } catch (const nlohmann::json::exception& e) {
      throw core::Error(cat("model transform '", t.kind, "': malformed settings: ", e.what()));
    }
  }
  return m;
}

namespace {

Restored load_into(const std::filesystem::path& file, Blueprint blueprint, const io::StateDict& sd) {
  Restored r;
  r.blueprint = std::move(blueprint);
  try {
    r.model = build(r.blueprint);
  } catch (const core::Error& e) {
    throw core::Error(cat(file.string(), ": cannot rebuild its model: ", e.what()));
  }
  io::load_state_dict(*r.model.module, sd, file.string());
  for (const auto& t : r.blueprint.transforms) {
    if (t.kind == compress::quantize::kInt8Transform) compress::quantize::check_int8_state(*r.model.module, file.string());
  }
  r.model.module->eval();
  return r;
}

// A blueprint given from outside knows nothing of the file's masks: `<param>_mask` entries are.
Blueprint with_masks_of(Blueprint blueprint, const io::StateDict& sd) {
  const std::string suffix = "_mask";
  std::vector<std::string> masks;
  for (const auto& e : sd) {
    if (e.name.size() > suffix.size() && e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      masks.push_back(e.name);
    }
  }
  if (!masks.empty()) blueprint.transforms.push_back({compress::prune::kMaskTransform, {{"masks", masks}}});
  return blueprint;
}

}  // namespace

Restored restore_model_as(const std::filesystem::path& file, const Blueprint& blueprint) {
  const auto sd = io::load_state_dict_file(file);
  return load_into(file, with_masks_of(blueprint, sd), sd);
}

Restored restore_model(const std::filesystem::path& file, const Blueprint* fallback) {
  return restore_model(io::read_stored_file(file), file, fallback);
}

Restored restore_model(const io::StoredFile& stored, const std::filesystem::path& file, const Blueprint* fallback) {
  const auto sd = io::decode_entries(stored.entries, file.string());
  if (!stored.description.is_null()) return load_into(file, Blueprint::from_json(stored.description, file.string()), sd);
  if (fallback) return load_into(file, with_masks_of(*fallback, sd), sd);
  throw core::UsageError(cat(file.string(), ": no model description in the file",
                               io::format_for(file) == io::Format::kPth ? cat(" (nor ", io::pth_sidecar(file).string(), ")") : "",
                             "; say which model it holds (--model)"));
}

}  // namespace shrink::models
