// Data section schema and manifest resolution.
#include "recipe/dataset_spec.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "data/synthetic.h"

namespace shrink::recipe {

namespace fs = std::filesystem;
using core::cat;

fs::path datasets_dir() {
  if (const char* env = std::getenv("SHRINK_DATASETS_DIR"); env && *env) return env;
  return fs::path(SHRINK_SOURCE_DIR) / "datasets";
}

std::vector<std::string> known_datasets() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(datasets_dir(), ec)) {
    if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

SchemaPtr split_schema() {
  return map_of({optional("images", string()), optional("labels", string()), optional("path", string()),
                 documented(optional("samples_dataset", string()),
                            "hdf5: the samples (default images); int32/int64 [N, L] are token ids"),
                 documented(optional("labels_dataset", string()),
                            "hdf5: the labels (default labels); '': none (text scored against a reference model)")});
}

SchemaPtr normalize_schema() {
  return map_of({with_default("mean", number(), 0.0), with_default("std", number(0, std::nullopt, true), 1.0)});
}

SchemaPtr manifest_schema() {
  return map_of(
      {required("name", string()),
       required("format", one_of({core::name_of(data::DataFormat::kIdx), core::name_of(data::DataFormat::kHdf5)})),
       required("root", string()), optional("install", string()), required("train", split_schema()),
       required("test", split_schema()), optional("shape", list_of(integer(1))), optional("classes", list_of(string())),
       optional("normalize", normalize_schema())});
}

YAML::Node load_manifest(const std::string& name) {
  const fs::path path = datasets_dir() / (name + ".yaml");
  YAML::Node m;
  try {
    m = YAML::LoadFile(path.string());
  } catch (const YAML::BadFile&) {
    throw core::UsageError(cat("dataset manifest not found: ", path.string()));
  } catch (const YAML::ParserException& e) {
    throw core::RecipeError({{path.string(), e.mark.line + 1, e.mark.column + 1, "", e.msg}});
  }
  auto problems = validate(m, *manifest_schema(), Source{path.string(), {}});
  if (!problems.empty()) throw core::RecipeError(problems);
  return m;
}

std::string check_data(const YAML::Node& n) {
  const bool named = n["dataset"].IsDefined(), has_format = n["format"].IsDefined();
  if (named == has_format) return "give either 'dataset' (a named dataset) or 'format' (idx, hdf5 or synthetic)";
  if (named) {
    const auto known = known_datasets();
    const std::string name = n["dataset"].Scalar();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      const std::string hint = closest(name, known);
      std::string known_list;
      for (const auto& k : known) known_list += (known_list.empty() ? "" : ", ") + k;
      return cat("unknown dataset '", name, "' (known: ", known_list.empty() ? "none" : known_list, "; manifests in ",
                 datasets_dir().string(), ")", hint.empty() ? "" : "; did you mean '" + hint + "'?");
    }
    try {
      load_manifest(name);
    } catch (const core::Error& e) {
      return cat("dataset '", name, "' has a broken manifest: ", e.what());
    }
    return "";
  }
  const auto format = core::enum_from_name<data::DataFormat>(n["format"].Scalar(), "format");
  for (const char* split : {"train", "test"}) {
    if (format == data::DataFormat::kSynthetic) continue;
    const auto s = n[split];
    const std::vector<std::string> need = format == data::DataFormat::kIdx
                                              ? std::vector<std::string>{"images", "labels"}
                                              : std::vector<std::string>{"path"};
    for (const auto& key : need) {
      if (!s || !s[key]) return cat("format '", core::name_of(format), "' needs ", split, ".", key);
    }
  }
  return "";
}

fs::path resolve(const fs::path& root, const std::string& file) {
  const fs::path p(file);
  return p.is_absolute() ? p : root / p;
}

}  // namespace

SchemaPtr data_schema() {
  const auto synthetic = data::synthetic_spec().schema();
  return map_of({documented(optional("dataset", string()), "a manifest in datasets/ (or $SHRINK_DATASETS_DIR)"),
                 documented(optional("format", one_of<data::DataFormat>()), "instead of dataset: describe the files"),
                 documented(optional("root", string()),
                            "base for relative file names (default: manifest root, else the recipe's folder)"),
                 optional("train", split_schema()), optional("test", split_schema()), optional("synthetic", synthetic),
                 optional("classes", list_of(string(), 2)), optional("normalize", normalize_schema()),
                 documented(with_default("val_split", number(0, 0.9), 0.1), "held out of the training split, seeded"),
                 documented(with_default("train_limit", integer(0), 0), "first N samples only; 0 = all"),
                 documented(with_default("test_limit", integer(0), 0), "first N samples only; 0 = all")},
                check_data);
}

data::SourceOptions parse_data(const YAML::Node& n, uint64_t seed, const fs::path& base_dir) {
  data::SourceOptions o;
  // A named dataset's files, format and classes come from its manifest; the recipe's data map
  // describes them itself otherwise. (Initialised, not assigned: assigning a YAML::Node writes
  // through to the node it refers to.)
  const YAML::Node spec = n["dataset"] ? load_manifest(n["dataset"].as<std::string>()) : n;
  fs::path root = base_dir;
  if (n["dataset"]) {
    const std::string name = n["dataset"].as<std::string>();
    o.name = name;
    root = spec["root"].as<std::string>();
    if (spec["install"]) o.install_hint = "install it with: " + spec["install"].as<std::string>();
  } else {
    o.name = n["format"].as<std::string>();
  }
  if (n["root"]) root = resolve(base_dir, n["root"].as<std::string>());
  o.format = core::enum_from_name<data::DataFormat>(spec["format"].as<std::string>(), "format");
  const auto h5_split = [&](const YAML::Node& s) {
    data::Hdf5File f;
    f.path = resolve(root, s["path"].as<std::string>());
    if (s["samples_dataset"]) f.samples = s["samples_dataset"].as<std::string>();
    if (s["labels_dataset"]) f.labels = s["labels_dataset"].as<std::string>();
    return f;
  };
  if (o.format == data::DataFormat::kIdx) {
    o.idx_train = {resolve(root, spec["train"]["images"].as<std::string>()),
                   resolve(root, spec["train"]["labels"].as<std::string>())};
    o.idx_test = {resolve(root, spec["test"]["images"].as<std::string>()),
                  resolve(root, spec["test"]["labels"].as<std::string>())};
  } else if (o.format == data::DataFormat::kHdf5) {
    o.h5_train = h5_split(spec["train"]);
    o.h5_test = h5_split(spec["test"]);
  } else {
    // Without a `synthetic` map the defaults apply.
    o.synthetic =
        data::synthetic_spec().parse(n["synthetic"] ? n["synthetic"] : YAML::Node(YAML::NodeType::Map)).seed(seed);
    o.sample_shape = o.synthetic.shape();
    for (int64_t c = 0; c < o.synthetic.classes(); ++c) o.class_names.push_back("class" + std::to_string(c));
  }
  if (spec["shape"]) o.sample_shape = spec["shape"].as<std::vector<int64_t>>();
  // The recipe's own values win over the manifest's.
  for (const YAML::Node& src : {spec, n}) {
    if (src["classes"]) o.class_names = src["classes"].as<std::vector<std::string>>();
    if (src["normalize"]) {
      o.normalization.mean = src["normalize"]["mean"].as<double>(0.0);
      o.normalization.std = src["normalize"]["std"].as<double>(1.0);
    }
  }
  o.val_split = n["val_split"].as<double>();
  o.train_limit = n["train_limit"].as<int64_t>();
  o.test_limit = n["test_limit"].as<int64_t>();
  o.seed = seed;
  return o;
}

}  // namespace shrink::recipe
