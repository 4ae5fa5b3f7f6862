// Restore: blueprint → architecture → transforms → strict weight load.
#include "models/restore.h"

#include "core/error.h"
#include "core/format.h"
#include "core/keyed_registry.h"
#include "io/state_dict.h"
#include "models/registry.h"

namespace shrink::models {

using core::cat;

namespace {

core::KeyedRegistry<TransformKind>& transforms() {
  static core::KeyedRegistry<TransformKind> t("model transform");
  return t;
}

TransformKind find_transform(const std::string& kind) {
  if (auto t = transforms().find(kind)) return *t;
  throw core::Error(cat("unknown model transform '", kind, "' (known: ", core::join(transform_kinds()),
                        "); the file was written by a newer shrink or needs a registered transform"));
}

}  // namespace

void register_transform(const std::string& kind, TransformKind transform) {
  SHRINK_CHECK(transform.apply, "model transform '", kind, "' has no apply function");
  transforms().add(kind, std::move(transform));
}

std::vector<std::string> transform_kinds() {
  std::vector<std::string> out;
  for (const auto& [kind, t] : transforms().entries()) out.push_back(kind);
  return out;
}

c10::Device run_device(const Blueprint& blueprint, const c10::Device& asked) {
  for (const auto& t : blueprint.transforms) {
    if (find_transform(t.kind).cpu_only) return c10::Device(c10::kCPU);
  }
  return asked;
}

Model build(const Blueprint& blueprint) {
  Model m = build_model(blueprint.arch, blueprint.options, blueprint.input);
  for (const auto& t : blueprint.transforms) {
    try {
      find_transform(t.kind).apply(m, t.settings);
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
    const auto kind = find_transform(t.kind);
    if (kind.check_loaded) kind.check_loaded(*r.model.module, file.string());
  }
  r.model.module->eval();
  return r;
}

// A blueprint given from outside knows nothing of the file's structure; its entries may imply
// some (pruning masks).
Blueprint with_implied_transforms(Blueprint blueprint, const io::StateDict& sd) {
  for (const auto& [name, kind] : transforms().entries()) {
    if (!kind.implied_by) continue;
    if (auto implied = kind.implied_by(sd)) blueprint.transforms.push_back(std::move(*implied));
  }
  return blueprint;
}

}  // namespace

Restored restore_model_as(const std::filesystem::path& file, const Blueprint& blueprint) {
  const auto sd = io::load_state_dict_file(file);
  return load_into(file, with_implied_transforms(blueprint, sd), sd);
}

Restored restore_model(const std::filesystem::path& file, const Blueprint* fallback) {
  return restore_model(io::read_stored_file(file), file, fallback);
}

Restored restore_model(const io::StoredFile& stored, const std::filesystem::path& file, const Blueprint* fallback) {
  const auto sd = io::decode_entries(stored.entries, file.string());
  if (!stored.description.is_null())
    return load_into(file, Blueprint::from_json(stored.description, file.string()), sd);
  if (fallback) return load_into(file, with_implied_transforms(*fallback, sd), sd);
  throw core::UsageError(
      cat(file.string(), ": no model description in the file",
          io::format_for(file) == io::Format::kPth ? cat(" (nor ", io::pth_sidecar(file).string(), ")") : "",
          "; say which model it holds (--model)"));
}

}  // namespace shrink::models
