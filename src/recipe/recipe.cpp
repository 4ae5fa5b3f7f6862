// Recipe loading: parse → overrides → validate → defaults → typed options.
#include "recipe/recipe.h"

#include <c10/util/Exception.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "core/atomic_file.h"
#include "core/device.h"
#include "core/error.h"
#include "core/format.h"
#include "core/memory_budget.h"
#include "core/meta_tensors.h"
#include "core/sha256.h"
#include "core/threads.h"
#include "core/yaml_json.h"
#include "deploy/onnx_export.h"
#include "models/inference_plan.h"
#include "models/registry.h"
#include "models/restore.h"
#include "models/torchscript.h"
#include "recipe/dataset_spec.h"
#include "recipe/overrides.h"
#include "recipe/recipe_size.h"
#include "report/measure.h"
#include "report/model_bench.h"
#include "report/report.h"
#include "train/metrics.h"
#include "train/precision.h"

namespace shrink::recipe {

namespace fs = std::filesystem;
using core::cat;

constexpr const char* kOnnxFormat = "onnx";

SchemaPtr recipe_schema() {
  register_builtin_stages();
  auto report_fields = report::latency_spec().schema()->fields;
  report_fields.push_back(documented(
      optional("reference", config::reference("models")),
      "data without labels: the model whose outputs, as brought (init), score every stage; default: the first "
      "model with init"));
  const auto report = map_of(report_fields);
  YAML::Node every_format(core::enum_choices<io::Format>());
  every_format.SetStyle(YAML::EmitterStyle::Flow);
  // The state_dict formats, and ONNX (deploy/onnx_export.h) for runtimes other than shrink.
  auto formats = core::enum_choices<io::Format>();
  formats.push_back(kOnnxFormat);
  const auto exports = map_of({with_default_node("formats", list_of(one_of(formats), 1), every_format)});
  // The name becomes a folder under runs/: it may not climb out of it or hide.
  const auto folder_name = [](const YAML::Node& n) -> std::string {
    const auto& v = n.Scalar();
    if (v.empty() || v == "." || v == ".." || v.find_first_of("/\\") != std::string::npos || v[0] == '.') {
      return core::cat("a folder name for runs/<name>: not empty, no '/' or '\\', not starting with '.'; got '", v,
                       "'");
    }
    return "";
  };
  return map_of(
      {documented(required("name", string(folder_name)), "the default output folder is runs/<name>"),
       documented(with_default("seed", integer(0), 0), "seeds model init, batch order and splits"),
       documented(
           with_default("device", string([](const YAML::Node& n) { return core::device_problem(n.Scalar()); }), "auto"),
           "cpu, cuda, cuda:N or auto"),
       documented(with_default("threads", integer(0, core::kMaxThreads), 0), "intra-op threads; 0 = all cores"),
       required("data", data_schema()), required("models", dict_of(models::model_schema(), 1)),
       documented(required("stages", list_of(tagged_union(StageRegistry::instance().schemas()), 1)),
                  "run in order; each item is {KIND: {...}}"),
       with_default_node("report", report, YAML::Node(YAML::NodeType::Map)),
       with_default_node("export", exports, YAML::Node(YAML::NodeType::Map))});
}

namespace {

// Where `models.NAME.init` points: the file itself, or the chosen stage's saved file of a run
// folder (that stage's .pt, as `shrink bench` picks). Relative paths are the recipe folder's.
fs::path resolve_init(const YAML::Node& decl, const std::string& name, const fs::path& base) {
  fs::path path = decl["init"].as<std::string>();
  if (path.is_relative()) path = base / path;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    if (!fs::exists(path, ec)) throw core::UsageError(cat(path.string(), ": no such file or run folder"));
    if (decl["init_stage"]) throw core::UsageError("init_stage needs init to be a run folder");
    return path;
  }
  const auto rep = report::read_report(path / "report.json");
  const report::StageReport* chosen = nullptr;
  for (const auto& s : rep.stages) {
    if (s.model != name || s.artifacts.empty()) continue;
    if (!decl["init_stage"] || s.index == decl["init_stage"].as<int64_t>()) chosen = &s;
  }
  if (!chosen) {
    throw core::UsageError(cat(path.string(), ": the run saved no model '", name, "'",
                               decl["init_stage"] ? cat(" in stage ", decl["init_stage"].as<int64_t>()) : ""));
  }
  return path / report::bench_artifact(chosen->artifacts);
}

// Data without labels (an HDF5 split with labels_dataset: '') is scored against a model that
// starts from a file: its outputs as brought are what every stage's outputs are compared with.
void resolve_reference(Recipe& r, const YAML::Node& root) {
  const auto named = root["report"]["reference"];
  const bool unlabeled = r.data.format == data::DataFormat::kHdf5 && r.data.h5_test.labels.empty();
  if (!unlabeled) {
    if (!named) return;
    throw core::RecipeError({{r.path.string(), named.Mark().line + 1, named.Mark().column + 1, "report.reference",
                              "a reference scores data without labels (labels_dataset: ''); this data has labels"}});
  }
  if (!r.data.h5_train.labels.empty()) {
    const auto mark = root["data"].Mark();
    throw core::RecipeError({{r.path.string(), mark.line + 1, mark.column + 1, "data",
                              "the test split has no labels (labels_dataset: '') but the train split has: give "
                              "both or neither"}});
  }
  if (named) {
    r.reference = named.Scalar();
    if (!r.inits.count(r.reference)) {
      throw core::RecipeError({{r.path.string(), named.Mark().line + 1, named.Mark().column + 1, "report.reference",
                                cat("'", r.reference, "' starts from no file (init): as brought it is untrained")}});
    }
    return;
  }
  for (const auto& [name, blueprint] : r.models) {
    if (r.inits.count(name)) {
      r.reference = name;
      return;
    }
  }
  const auto mark = root["data"].Mark();
  throw core::RecipeError(
      {{r.path.string(), mark.line + 1, mark.column + 1, "data",
        "data without labels (labels_dataset: '') is scored against a model as brought: give a model an init"}});
}

// What validation knows of a model without spending its memory: the model built on the meta
// device (shapes, no data) and the bytes its tensors and a one-sample forward pass would take.
struct ModelProbe {
  models::Model model;
  uint64_t tensor_bytes = 0;        // parameters and buffers
  uint64_t train_sample_bytes = 0;  // a forward with gradients keeps for backward, per sample
  uint64_t eval_sample_bytes = 0;   // a forward without gradients holds at its peak, per sample
  uint64_t plan_bytes = 0;          // the copies of its weights an inference plan may hold
};

ModelProbe probe_on_meta(const models::Blueprint& blueprint, const models::ModelInput& input) {
  core::MetaTensorScope meta;
  ModelProbe p;
  p.model = models::build(blueprint);
  p.tensor_bytes = meta.live_bytes();
  p.plan_bytes = models::plan_copy_bytes(*p.model.module);
  // Measured from before the sample exists, so the per-sample figures include the input itself.
  const auto before = meta.live_bytes();
  const auto x = models::placeholder_input(p.model, models::batch_shape(1, input.shape));
  try {
    meta.reset_peak();
    {
      const auto logits = p.model.forward(x);
      p.train_sample_bytes = meta.peak_bytes() - before;
    }
    meta.reset_peak();
    torch::NoGradGuard no_grad;
    const auto logits = p.model.forward(x);
    p.eval_sample_bytes = meta.peak_bytes() - before;
  } catch (const c10::Error& e) {
    const std::string why = e.what_without_backtrace();
    throw core::UsageError(cat("a forward pass on one sample of the data (shape ", c10::IntArrayRef(input.shape),
                               ") fails: ", why.substr(0, why.find('\n'))));
  }
  return p;
}

// The most memory a model takes in any stage of the recipe, and where: its tensors (four times over
// when a stage trains it: weights, gradients, two optimizer moments), the inputs and activations of
// its largest batch, and while it trains, the tensors and no-grad activations of the models run
// beside it (a teacher); while it is evaluated, the copies of its weights an inference plan holds
// (unless `report: {fast_path: false}`). Models without a probe (files: TorchScript, init) count
// nothing.
struct PeakEstimate {
  uint64_t bytes = 0;
  std::string at;  // "training at batch 128 with t's weights and activations beside it"
};

// Saturates at UINT64_MAX: an estimate that overflows is over any budget.
uint64_t add_sat(uint64_t a, uint64_t b) { return __builtin_add_overflow(a, b, &a) ? UINT64_MAX : a; }
uint64_t mul_sat(uint64_t a, uint64_t b) { return __builtin_mul_overflow(a, b, &a) ? UINT64_MAX : a; }

PeakEstimate peak_estimate(const std::map<std::string, ModelProbe>& probes, const Recipe& r, const std::string& name) {
  const ModelProbe& p = probes.at(name);
  PeakEstimate peak;
  const auto consider = [&](bool trains, int64_t batch, const std::vector<std::string>& companions) {
    if (batch <= 0) return;
    const auto n = static_cast<uint64_t>(batch);
    // Evaluation runs on an inference plan, which may copy the weights it repacks.
    const bool planned = !trains && r.latency.fast_path();
    uint64_t bytes = add_sat(add_sat(mul_sat(trains ? 2 * p.train_sample_bytes : p.eval_sample_bytes, n),
                                     mul_sat(p.tensor_bytes, trains ? 4 : 1)),
                             planned ? p.plan_bytes : 0);
    std::vector<std::string> counted;
    for (const auto& c : companions) {
      const auto it = probes.find(c);
      if (it == probes.end()) continue;
      bytes = add_sat(bytes, add_sat(it->second.tensor_bytes, mul_sat(it->second.eval_sample_bytes, n)));
      counted.push_back(c);
    }
    if (bytes > peak.bytes) {
      peak = {
          bytes,
          cat(trains ? "training" : "evaluation", " at batch ", batch,
              counted.empty() ? "" : cat(" with ", core::join(counted, ", "), "'s weights and activations beside it"),
              planned && p.plan_bytes > 0
                  ? cat(", with its inference plan's ",
                        core::human_bytes(static_cast<int64_t>(std::min<uint64_t>(p.plan_bytes, INT64_MAX))),
                        " copy of the weights")
                  : "")};
    }
  };
  for (const auto& stage : r.stages) {
    if (stage->model() != name) continue;
    const auto b = stage->batches();
    consider(true, b.train, b.companions);
    consider(false, b.eval, {});
  }
  consider(false, train::kEvalBatch, {});
  for (int64_t batch : r.latency.batch_sizes()) consider(false, batch, {});
  return peak;
}

// Builds each model on the meta device when the data shape is known without loading the data,
// refuses one whose estimated memory passes the budget, and lets each stage check itself against
// it, so e.g. a pruning selector that matches nothing fails validation instead of a run. No
// model's weights are allocated: a model of any size is validated in the same few megabytes.
void check_stages_against_models(const Recipe& r, const YAML::Node& root) {
  if (r.data.sample_shape.empty() || r.data.class_names.size() < 2) return;
  const models::ModelInput input{r.data.sample_shape, static_cast<int64_t>(r.data.class_names.size())};
  std::map<std::string, models::Model> built;  // one instance per model, shared by its stages
  std::map<std::string, ModelProbe> probes;    // the models built on the meta device
  // A recipe error at models.NAME, with the first line of `why`.
  const auto model_error = [&](const std::string& name, const std::string& why) {
    const auto mark = root["models"][name].Mark();
    return core::RecipeError(
        {{r.path.string(), mark.line + 1, mark.column + 1, cat("models.", name), why.substr(0, why.find('\n'))}});
  };
  for (const auto& model : r.models) {
    const std::string& name = model.first;  // a plain name: lambdas cannot capture structured bindings in C++17
    auto b = model.second;
    b.input = input;
    // A model that starts from a file is checked against it: names, shapes, architecture. The
    // file's readers bound what it can allocate.
    if (const auto init = r.inits.find(name); init != r.inits.end()) {
      try {
        built.emplace(name, models::initialize_from(init->second.file, b, init->second.prefix).model);
        continue;
      } catch (const core::UsageError& e) {
        const auto mark = root["models"][name]["init"].Mark();
        throw core::RecipeError(
            {{r.path.string(), mark.line + 1, mark.column + 1, cat("models.", name, ".init"), e.what()}});
      }
    }
    const auto fail = [&](const std::string& why) { return model_error(name, why); };
    // A TorchScript model is a file LibTorch loads whole: it is read as it is, bounded by its size.
    if (b.arch == models::kTorchScriptArch) {
      try {
        built.emplace(name, models::build(b));
      } catch (const c10::Error& e) {
        throw fail(cat("cannot build the model: ", e.what_without_backtrace()));
      }
      continue;
    }
    try {
      probes.emplace(name, probe_on_meta(b, input));
    } catch (const c10::Error& e) {
      throw fail(cat("cannot build the model: ", e.what_without_backtrace()));
    } catch (const core::Error& e) {
      throw fail(e.what());
    }
  }
  // Sized once every model is probed: a training stage counts its teacher beside its model.
  for (auto& [name, probe] : probes) {
    const auto peak = peak_estimate(probes, r, name);
    if (const auto why = core::over_budget(peak.bytes); !why.empty()) {
      throw model_error(name,
                        cat("the model's ",
                            core::human_bytes(static_cast<int64_t>(std::min<uint64_t>(probe.tensor_bytes, INT64_MAX))),
                            " of weights and its activations in ", peak.at, ": ", why));
    }
  }
  for (auto& [name, probe] : probes) built.emplace(name, std::move(probe.model));
  std::vector<core::Diagnostic> problems;
  for (size_t i = 0; i < r.stages.size(); ++i) {
    try {
      r.stages[i]->check(*built.at(r.stages[i]->model()).module);
    } catch (const core::UsageError& e) {
      const auto body = (*root["stages"][i].begin()).second;
      const auto mark = body.Mark();
      problems.push_back(
          {r.path.string(), mark.line + 1, mark.column + 1, cat("stages.", i, ".", r.stage_kinds[i]), e.what()});
    }
  }
  if (!problems.empty()) throw core::RecipeError(problems);
}

// ONNX export writes the zoo's layers, float and int8; a TorchScript model would fail after its
// stage ran, so the recipe is refused at export.formats before any work.
void check_onnx_exportable(const Recipe& r, const YAML::Node& formats_root) {
  if (!r.export_onnx) return;
  const auto fail = [&](const std::string& why) {
    const auto mark = formats_root["export"]["formats"].Mark();
    return core::RecipeError({{r.path.string(), mark.line + 1, mark.column + 1, "export.formats", why}});
  };
  if (r.export_formats.empty()) {
    throw fail(
        "onnx: list a state_dict format beside it (pt, pth or h5): the report's latency and `shrink bench` "
        "restore each stage's model from one");
  }
  for (const auto& [name, blueprint] : r.models) {
    if (const auto why = deploy::onnx_refusal(blueprint.arch); !why.empty())
      throw fail(cat("onnx: model '", name, "' is ", why));
  }
}

// An int8 model has no float weights left to train, prune or quantize.
void check_nothing_follows_int8(const Recipe& r, const YAML::Node& root) {
  std::map<std::string, size_t> int8_since;
  constexpr size_t kFromInit = static_cast<size_t>(-1);
  // A model started from a final (int8) file is evaluated, benchmarked or a teacher; never trained.
  for (const auto& [name, init] : r.inits) {
    const auto stored = io::read_stored_file(init.file);
    if (!stored.description.is_null() &&
        models::final_transform(models::Blueprint::from_json(stored.description, init.file.string()))) {
      int8_since[name] = kFromInit;
    }
  }
  std::vector<core::Diagnostic> problems;
  for (size_t i = 0; i < r.stages.size(); ++i) {
    const auto& model = r.stages[i]->model();
    const auto it = int8_since.find(model);
    if (it != int8_since.end()) {
      const auto mark = (*root["stages"][i].begin()).second.Mark();
      problems.push_back(
          {r.path.string(), mark.line + 1, mark.column + 1, cat("stages.", i, ".", r.stage_kinds[i]),
           it->second == kFromInit
               ? cat("model '", model, "' starts from an int8 file (models.", model,
                     ".init: ", r.inits.at(model).file.string(),
                     "): it can be evaluated, benchmarked or teach, but nothing can train or quantize it")
               : cat("model '", model, "' is int8 after stage ", it->second, " (", r.stage_kinds[it->second],
                     "): nothing can train or quantize it again; move this stage before that one")});
    } else if (r.stages[i]->ends_in_int8()) {
      int8_since[model] = i;
    }
  }
  if (!problems.empty()) throw core::RecipeError(problems);
}

// fp16 autocast exists only on CUDA: a CPU recipe asking for it is refused before any work. With
// `auto` the device is known only at run time, where the Trainer checks it.
void check_precision_fits_device(const Recipe& r, const YAML::Node& root) {
  if (r.device != "cpu") return;
  std::vector<core::Diagnostic> problems;
  std::function<void(const YAML::Node&, const std::string&)> visit = [&](const YAML::Node& node,
                                                                         const std::string& key) {
    if (!node.IsMap()) return;
    for (const auto& kv : node) {
      const std::string path = cat(key, ".", kv.first.Scalar());
      if (kv.first.Scalar() == "precision" && kv.second.IsScalar() &&
          core::enum_from_name<train::Precision>(kv.second.Scalar(), "precision") == train::Precision::kFp16) {
        const auto mark = kv.second.Mark();
        problems.push_back({r.path.string(), mark.line + 1, mark.column + 1, path,
                            "precision fp16 needs a CUDA device and this recipe's device is cpu; use bf16 on the CPU"});
      } else {
        visit(kv.second, path);
      }
    }
  };
  for (size_t i = 0; i < root["stages"].size(); ++i) visit(root["stages"][i], cat("stages.", i));
  if (!problems.empty()) throw core::RecipeError(problems);
}

// Inputs the run allocates whole (synthetic data, latency batches), checked before any work.
void check_sizes_fit_in_memory(const Recipe& r, const YAML::Node& root) {
  std::vector<core::Diagnostic> problems;
  const auto check = [&](const YAML::Node& at, const std::string& key, std::vector<int64_t> dims) {
    std::vector<std::string> sizes;
    for (int64_t d : dims) sizes.push_back(std::to_string(d));
    try {
      const std::string what = cat("a ", core::join(sizes, " x "), " float tensor");
      core::check_fits_in_memory(core::tensor_bytes(dims, sizeof(float), what), what);
    } catch (const core::Error& e) {
      const auto mark = at.Mark();
      problems.push_back({r.path.string(), mark.line + 1, mark.column + 1, key, e.what()});
    }
  };
  if (r.data.format == data::DataFormat::kSynthetic) {
    const auto& s = r.data.synthetic;
    const YAML::Node at = root["data"]["synthetic"] ? root["data"]["synthetic"] : root["data"];
    for (int64_t samples : {s.samples(), s.test_samples()}) {
      std::vector<int64_t> dims = {samples};
      dims.insert(dims.end(), s.shape().begin(), s.shape().end());
      check(at, "data.synthetic", dims);
    }
  }
  if (r.data.class_names.size() >= 2) {
    const auto classes = static_cast<int64_t>(r.data.class_names.size());
    // The key where the class count comes from: synthetic data's `classes`, the data's class list,
    // else the data map (a manifest's classes).
    const bool synthetic = r.data.format == data::DataFormat::kSynthetic && root["data"]["synthetic"]["classes"];
    const bool listed = !synthetic && root["data"]["classes"];
    const std::string key = synthetic ? "data.synthetic.classes" : listed ? "data.classes" : "data";
    const YAML::Node at = synthetic ? root["data"]["synthetic"]["classes"]
                          : listed  ? root["data"]["classes"]
                                    : root["data"];
    if (const auto why = core::over_budget(train::ConfusionMeter::bytes_for(classes)); !why.empty()) {
      const auto mark = at.Mark();
      problems.push_back({r.path.string(), mark.line + 1, mark.column + 1, key,
                          cat("the evaluation's confusion matrix of ", classes, " x ", classes, " classes ", why)});
    }
  }
  for (int64_t batch : r.latency.batch_sizes()) {
    check(root["report"]["latency_batch_sizes"], "report.latency_batch_sizes",
          models::batch_shape(batch, r.data.sample_shape));
  }
  if (!problems.empty()) throw core::RecipeError(problems);
}

}  // namespace

const models::Blueprint& Recipe::model(const std::string& name) const {
  std::string names;
  for (const auto& [n, blueprint] : models) {
    if (n == name) return blueprint;
    names += (names.empty() ? "" : ", ") + n;
  }
  throw core::UsageError(cat("no model '", name, "' in ", path.string(), " (models: ", names, ")"));
}

std::string Recipe::effective_yaml() const {
  YAML::Emitter out;
  out << effective;
  return std::string(out.c_str()) + "\n";
}

std::string Recipe::effective_sha256() const { return core::sha256_hex(effective_yaml()); }

namespace {

// YAML lets a key repeat in a map and yaml-cpp keeps the last: a recipe where two `epochs:` sit
// under one stage would silently run with one of them. Each map is checked once (an alias
// repeats a map, not its check), with a stack rather than recursion, so the cost is linear in
// the text whatever its nesting.
void check_duplicate_keys(const YAML::Node& root, const fs::path& path) {
  std::vector<core::Diagnostic> problems;
  std::set<std::pair<int, int>> seen;
  std::vector<std::pair<YAML::Node, std::string>> stack = {{root, ""}};
  const auto join = [](const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; };
  while (!stack.empty()) {
    const auto [node, at] = stack.back();
    stack.pop_back();
    if (!seen.insert({node.Mark().line, node.Mark().column}).second) continue;
    if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); ++i) stack.emplace_back(node[i], join(at, std::to_string(i)));
    } else if (node.IsMap()) {
      std::map<std::string, int> first_line;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) continue;
        const auto& key = kv.first.Scalar();
        const auto [it, fresh] = first_line.emplace(key, kv.first.Mark().line + 1);
        if (!fresh) {
          problems.push_back(
              {path.string(), kv.first.Mark().line + 1, kv.first.Mark().column + 1, join(at, key),
               cat("the key '", key, "' repeats (first on line ", it->second, "); YAML would keep only the last")});
        }
        stack.emplace_back(kv.second, join(at, key));
      }
    }
  }
  if (!problems.empty()) throw core::RecipeError(problems);
}

// Each model is built (on the meta device) and each stage checked at validation: their numbers are
// bounded so validation stays short whatever the recipe.
void check_counts(const YAML::Node& root, const fs::path& path) {
  const auto refuse = [&](const char* key, size_t n, int64_t limit) {
    const auto mark = root[key].Mark();
    throw core::RecipeError(
        {{path.string(), mark.line + 1, mark.column + 1, key, cat(n, " entries; a recipe may have at most ", limit)}});
  };
  const auto models = root["models"];
  if (models && models.IsMap() && models.size() > static_cast<size_t>(RecipeLimits::kMaxModels)) {
    refuse("models", models.size(), RecipeLimits::kMaxModels);
  }
  const auto stages = root["stages"];
  if (stages && stages.IsSequence() && stages.size() > static_cast<size_t>(RecipeLimits::kMaxStages)) {
    refuse("stages", stages.size(), RecipeLimits::kMaxStages);
  }
}

}  // namespace

Recipe load_recipe(const fs::path& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw core::UsageError(cat(path.string(), ": recipe not found"));
  try {
    core::require_regular_file(path);
  } catch (const core::Error& e) {
    throw core::UsageError(e.what());
  }
  check_recipe_bytes(path);
  Recipe r;
  r.path = path;
  const std::string text = core::read_text_file(path);
  r.file_sha256 = core::sha256_hex(text);
  r.overrides = overrides;
  check_recipe_size(text, path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw core::RecipeError({{path.string(), e.mark.line + 1, e.mark.column + 1, "", cat("invalid YAML: ", e.msg)}});
  }
  if (!root.IsMap()) {
    throw core::RecipeError(
        {{path.string(), 1, 1, "", "expected a map of recipe keys (name, data, models, stages, ...)"}});
  }
  check_duplicate_keys(root, path);
  check_counts(root, path);

  Source source{path.string(), {}};
  for (const auto& arg : overrides) {
    const Override o = parse_override(arg);
    apply_override(root, o);
    source.overridden.insert(o.path);
  }

  const auto schema = recipe_schema();
  const auto problems = validate(root, *schema, source);
  if (!problems.empty()) throw core::RecipeError(problems);
  fill_defaults(root, *schema);
  r.effective = root;

  r.name = root["name"].as<std::string>();
  r.seed = root["seed"].as<uint64_t>();
  r.device = root["device"].as<std::string>();
  r.threads = root["threads"].as<int64_t>();
  r.data_base_dir = fs::absolute(path.has_parent_path() ? path.parent_path() : fs::path(".")).lexically_normal();
  r.data = parse_data(root["data"], r.seed, r.data_base_dir);
  for (const auto& kv : root["models"]) {
    models::Blueprint b;
    try {
      b = models::declared_blueprint(kv.second, r.data_base_dir);
    } catch (const core::Error& e) {
      // What an architecture resolves is a file it names (`file` of a TorchScript model).
      const auto key = kv.second["file"] ? kv.second["file"] : kv.second["arch"];
      throw core::RecipeError({{path.string(), key.Mark().line + 1, key.Mark().column + 1,
                                cat("models.", kv.first.Scalar(), kv.second["file"] ? ".file" : ".arch"), e.what()}});
    }
    b.data = core::yaml_to_json(root["data"]);
    b.data_base_dir = r.data_base_dir.string();
    b.data_seed = r.seed;
    r.models.emplace_back(kv.first.Scalar(), std::move(b));
    if (kv.second["init"]) {
      const std::string name = kv.first.Scalar();
      try {
        r.inits[name] = {resolve_init(kv.second, name, r.data_base_dir), kv.second["init_prefix"].as<std::string>("")};
      } catch (const core::Error& e) {
        const auto mark = kv.second["init"].Mark();
        throw core::RecipeError(
            {{path.string(), mark.line + 1, mark.column + 1, cat("models.", name, ".init"), e.what()}});
      }
    }
  }
  for (size_t i = 0; i < root["stages"].size(); ++i) {
    const auto item = *root["stages"][i].begin();
    const std::string kind = item.first.Scalar();
    try {
      r.stages.push_back(StageRegistry::instance().find(kind)->create(item.second));
    } catch (const core::UsageError& e) {
      const auto mark = item.second.Mark();
      throw core::RecipeError(
          {{path.string(), mark.line + 1, mark.column + 1, cat("stages.", i, ".", kind), e.what()}});
    }
    r.stage_kinds.push_back(kind);
  }
  resolve_reference(r, root);
  check_nothing_follows_int8(r, root);
  check_precision_fits_device(r, root);
  r.latency = report::latency_spec().parse(root["report"]);
  check_sizes_fit_in_memory(r, root);
  check_stages_against_models(r, root);
  for (const auto& f : root["export"]["formats"]) {
    if (f.Scalar() == kOnnxFormat) {
      r.export_onnx = true;
    } else {
      r.export_formats.push_back(core::enum_from_name<io::Format>(f.Scalar(), "export.formats"));
    }
  }
  check_onnx_exportable(r, root);
  return r;
}

}  // namespace shrink::recipe
