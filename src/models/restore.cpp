// Restore: blueprint → architecture → transforms → strict weight load.
#include "models/restore.h"

#include <set>

#include "core/error.h"
#include "core/format.h"
#include "core/keyed_registry.h"
#include "core/yaml_json.h"
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

const Transform* final_transform(const Blueprint& blueprint) {
  for (const auto& t : blueprint.transforms) {
    if (find_transform(t.kind).final) return &t;
  }
  return nullptr;
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
  } catch (const core::UsageError& e) {
    throw core::UsageError(cat(file.string(), ": cannot rebuild its model: ", e.what()));
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

// When the names are the model's under one wrapper's first component (DDP's and DataParallel's
// "module."), say which init_prefix strips it.
std::string wrapper_hint(const io::StateDict& sd, const Blueprint& blueprint) {
  if (sd.empty()) return "";
  const auto dot = sd.front().name.find('.');
  if (dot == std::string::npos) return "";
  const auto first = sd.front().name.substr(0, dot + 1);
  std::set<std::string> given, expected;
  for (const auto& e : sd) {
    if (e.name.rfind(first, 0) != 0) return "";
    given.insert(e.name.substr(first.size()));
  }
  try {
    for (const auto& e : io::state_dict(*build(blueprint).module)) expected.insert(e.name);
  } catch (const core::Error&) {
    return "";
  }
  if (given != expected) return "";
  return cat("\n  (every name starts with '", first, "': init_prefix: ", first, " strips it)");
}

}  // namespace

Restored restore_model_as(const std::filesystem::path& file, const Blueprint& blueprint) {
  const auto sd = io::load_state_dict_file(file);
  return load_into(file, with_implied_transforms(blueprint, sd), sd);
}

Restored initialize_from(const std::filesystem::path& file, const Blueprint& declared, const std::string& prefix) {
  const auto stored = io::read_stored_file(file);
  auto sd = io::decode_entries(stored.entries, file.string());
  if (!prefix.empty()) {
    for (auto& e : sd) {
      if (e.name.rfind(prefix, 0) != 0) {
        throw core::UsageError(
            cat(file.string(), ": entry '", e.name, "' does not start with the prefix '", prefix, "'"));
      }
      e.name = e.name.substr(prefix.size());
    }
  }
  Blueprint blueprint = declared;
  if (stored.description.is_null()) {
    const auto* arch = ArchitectureRegistry::instance().find(declared.arch);
    if (arch && arch->import_names) sd = arch->import_names(sd, declared.options, declared.input, file.string());
    blueprint = with_implied_transforms(declared, sd);
  } else {
    const auto own = Blueprint::from_json(stored.description, file.string());
    std::vector<std::string> differs;
    if (own.arch != declared.arch) differs.push_back(cat("arch ", own.arch, " (declared: ", declared.arch, ")"));
    if (core::yaml_to_json(own.options) != core::yaml_to_json(declared.options)) {
      differs.push_back(cat("options ", core::yaml_to_json(own.options).dump(),
                            " (declared: ", core::yaml_to_json(declared.options).dump(), ")"));
    }
    if (own.input.shape != declared.input.shape || own.input.num_classes != declared.input.num_classes) {
      differs.push_back("its input (sample shape or classes) differs from the data's");
    }
    if (!differs.empty()) {
      throw core::UsageError(cat(file.string(), ": holds another model than declared: ", core::join(differs, "; ")));
    }
    blueprint.transforms = own.transforms;
  }
  try {
    return load_into(file, blueprint, sd);
  } catch (const core::UsageError&) {
    throw;
  } catch (const core::Error& e) {
    throw core::UsageError(cat(e.what(), wrapper_hint(sd, blueprint)));
  }
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
