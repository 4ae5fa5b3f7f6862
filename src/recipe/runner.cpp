// The stage runner: data and models once, then per stage run → evaluate → measure → export → report.
#include "recipe/runner.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "core/atomic_file.h"
#include "core/device.h"
#include "core/error.h"
#include "core/folder_lock.h"
#include "core/format.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "core/threads.h"
#include "core/yaml_json.h"
#include "deploy/onnx_export.h"
#include "dist/process_group.h"
#include "dist/replicas.h"
#include "models/cost.h"
#include "models/inference_plan.h"
#include "models/restore.h"
#include "models/torchscript.h"
#include "report/model_bench.h"
#include "train/embedding_fidelity.h"
#include "train/metrics.h"

namespace shrink::recipe {

namespace fs = std::filesystem;
using core::cat;
using nlohmann::json;

namespace {

constexpr const char* kStateFile = "run_state.json";

std::string stage_dir_name(int64_t index, const std::string& kind) { return cat("stage-", index, "-", kind); }

// What a resumed run trusts from the interrupted one: the effective recipe and completed stages.
struct RunState {
  std::string effective_sha256;
  int64_t completed = 0;
};

void write_state(const fs::path& out, const RunState& s) {
  core::write_text_atomically(
      out / kStateFile, json{{"effective_sha256", s.effective_sha256}, {"completed_stages", s.completed}}.dump(2));
}

RunState read_state(const fs::path& out) {
  try {
    const auto j = json::parse(core::read_text_file(out / kStateFile));
    return RunState{j.at("effective_sha256").get<std::string>(), j.at("completed_stages").get<int64_t>()};
  } catch (const json::exception& e) {
    throw core::Error(cat((out / kStateFile).string(), ": unreadable run state: ", e.what()));
  }
}

// One folder holds one run: a new run never silently replaces another or mixes its files with
// it. Called with the folder's lock held.
void prepare_run_folder(const fs::path& out, const RunOptions& options) {
  if (options.resume && options.force) throw core::UsageError("--resume and --force exclude each other");
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(out)) {
    if (e.path().filename() != core::FolderLock::kFileName) entries.push_back(e.path());
  }
  std::error_code ec;
  const bool holds_run = fs::exists(out / kStateFile, ec) || fs::exists(out / "report.json", ec);
  if (!entries.empty() && !holds_run) {
    throw core::UsageError(cat(out.string(), ": holds files that are not a shrink run (",
                               entries.front().filename().string(), ", ...); choose an empty or new output folder"));
  }
  if (holds_run && !options.resume && !options.force) {
    throw core::UsageError(cat(out.string(),
                               ": already holds a run; pass --resume to continue it, --force to replace it, ",
                               "or choose another output folder"));
  }
  if (holds_run && options.force) {
    for (const auto& p : entries) fs::remove_all(p);
    core::log_info(out.string(), ": removed the previous run (--force)");
  }
  if (const int stale = core::remove_stale_temp_files(out)) {
    core::log_info(out.string(), ": removed ", stale, " temporary file", stale == 1 ? "" : "s",
                   " an interrupted run left behind");
  }
}

// The restored model on the device its kernels run on.
c10::Device restored_on(const models::Restored& restored, const c10::Device& device) {
  const auto run_on = models::run_device(restored.blueprint, device);
  restored.model.module->to(run_on);
  return run_on;
}

// Parameters, sparsity per layer and FLOPs: what a stage's figures hold whatever scores it.
void finish_measure(report::StageReport& s, const ModelSlot& slot, const data::Splits& data) {
  const auto& model = slot.model.module;
  const auto params = report::count_params(*model);
  s.metrics.params = params.params;
  s.metrics.nonzero_params = params.nonzero_params;
  s.metrics.sparsity = params.sparsity;
  s.layers = report::layer_stats(*model);
  if (const auto cost = models::count_cost(slot.model, data.test.sample_shape())) s.metrics.flops = cost->flops();
}

// Data without labels: the reference model's outputs on the test set, as brought.
struct Reference {
  std::string name;
  at::Tensor outputs;  // float [N, D] on the CPU; undefined when the data has labels
};

// Accuracy, loss and per-class figures (or, without labels, embedding fidelity against the
// reference), parameters and per-layer sparsity of a model as it is now.
report::StageReport measure_model(const Recipe& recipe, const ModelSlot& slot, const data::Splits& data,
                                  const c10::Device& device, int64_t index, const std::string& kind,
                                  const Reference& reference) {
  report::StageReport s;
  s.index = index;
  s.kind = kind;
  s.model = slot.name;
  const auto& model = slot.model.module;
  // Accuracy on the path the latency is timed on (equal to the plain one within its tolerance).
  const auto plan = models::plan_inference(slot.model, data.test.sample_shape(), train::kEvalBatch, device,
                                           models::InferenceOptions().fast(recipe.latency.fast_path()));
  if (reference.outputs.defined()) {
    const auto f =
        train::embedding_fidelity(train::collect_outputs(*model, plan.forward, data.test), reference.outputs);
    s.metrics.fidelity =
        report::FidelityStat{reference.name, f.samples, f.mean_cosine, f.p5_cosine, f.min_cosine, f.spearman};
    finish_measure(s, slot, data);
    return s;
  }
  const auto eval = train::evaluate(*model, plan.forward, data.test, train::kEvalBatch);
  s.metrics.accuracy = eval.accuracy;
  s.metrics.loss = eval.loss;
  s.metrics.per_class_accuracy = eval.per_class_accuracy;
  const auto confusion = eval.confusion.to(torch::kCPU).contiguous();
  for (int64_t r = 0; r < confusion.size(0); ++r) {
    const auto* row = confusion[r].data_ptr<int64_t>();
    s.metrics.confusion.emplace_back(row, row + confusion.size(1));
  }
  finish_measure(s, slot, data);
  return s;
}

// What the report's latency is timed on: the test samples, as `shrink bench` times a run's files
// (int8 layers run slower on values past the range they were calibrated on, such as noise).
at::Tensor latency_samples(const data::Splits& data) { return data.test.size() > 0 ? data.test.inputs : at::Tensor(); }

// A model that started from a file (`init`), measured as brought: its file's size, its latency.
report::StageReport measure_initial(const Recipe& recipe, const ModelSlot& slot, const data::Splits& data,
                                    const c10::Device& device, const Reference& reference) {
  auto s = measure_model(recipe, slot, data, device, -1, "initial", reference);
  s.metrics.size_bytes = static_cast<int64_t>(fs::file_size(recipe.inits.at(slot.name).file));
  s.metrics.latency = report::measure_latency(slot.model, data.test.sample_shape(), latency_samples(data),
                                              models::run_device(slot.blueprint, device), recipe.latency);
  return s;
}

report::StageReport measure_stage(const Recipe& recipe, const ModelSlot& slot, const data::Splits& data,
                                  const c10::Device& device, int64_t index, const std::string& kind,
                                  const fs::path& out, const Reference& reference) {
  auto s = measure_model(recipe, slot, data, device, index, kind, reference);
  const auto& model = slot.model.module;
  const fs::path rel_dir = stage_dir_name(index, kind);
  int64_t smallest = -1;
  for (const auto format : recipe.export_formats) {
    const std::string& ext = core::name_of(format);
    const fs::path rel = rel_dir / (slot.name + "." + ext);
    io::save_module(out / rel, *model, slot.blueprint.to_json());
    const auto bytes = static_cast<int64_t>(fs::file_size(out / rel));
    smallest = smallest < 0 ? bytes : std::min(smallest, bytes);
    s.artifacts[ext] = rel.string();
  }
  s.metrics.size_bytes = smallest;
  if (recipe.export_onnx) {
    const fs::path rel = rel_dir / (slot.name + ".onnx");
    deploy::export_onnx(
        out / rel, slot.model, slot.blueprint,
        deploy::OnnxExportOptions().metadata(
            {{"recipe_sha256", recipe.file_sha256}, {"stage", rel_dir.string()}, {"model", slot.name}}));
    s.artifacts["onnx"] = rel.string();
  }
  // A TorchScript model also goes back as TorchScript, its weights the compressed ones.
  if (auto* scripted = models::as_torchscript(slot.model)) {
    const fs::path rel = rel_dir / (slot.name + ".torchscript.pt");
    models::save_torchscript(*scripted, out / rel);
    s.artifacts["torchscript"] = rel.string();
  }
  // The latency is the saved model's, restored from its file as `shrink bench` restores it, so the
  // report and a later bench of the run time the same thing the same way.
  const auto restored = models::restore_model(out / report::bench_artifact(s.artifacts));
  s.metrics.latency = report::measure_latency(restored.model, data.test.sample_shape(), latency_samples(data),
                                              restored_on(restored, device), recipe.latency);
  return s;
}

void print_stage_line(const report::StageReport& s) {
  std::string lat;
  for (const auto& l : s.metrics.latency) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%.3f ms@%lld", lat.empty() ? "" : ", ", l.p50_ms,
                  static_cast<long long>(l.batch));
    lat += buf;
  }
  char score[96];
  if (const auto& f = s.metrics.fidelity) {
    std::snprintf(score, sizeof score, "mean cosine %.4f (p5 %.4f, Spearman %.4f) to %s", f->mean_cosine, f->p5_cosine,
                  f->spearman, f->reference.c_str());
  } else {
    std::snprintf(score, sizeof score, "test accuracy %.4f, loss %.4f", s.metrics.accuracy, s.metrics.loss);
  }
  char line[384];
  std::snprintf(line, sizeof line, "[%lld] %s %s: %s, %lld params (sparsity %.3f), %lld bytes, p50 %s, %.1f s",
                static_cast<long long>(s.index), s.kind.c_str(), s.model.c_str(), score,
                static_cast<long long>(s.metrics.params), s.metrics.sparsity,
                static_cast<long long>(s.metrics.size_bytes), lat.c_str(), s.wall_s);
  core::log_info(line);
}

}  // namespace

report::Report run_recipe(const Recipe& recipe, const RunOptions& options) {
  const fs::path out = options.out_dir;
  const auto& group = options.group;
  const bool parallel = group && group->world_size() > 1;
  // Only rank 0 of a data-parallel run touches the folder; the others read what it wrote.
  const bool writer = !parallel || group->rank() == 0;
  std::optional<core::FolderLock> lock;
  if (writer) {
    lock.emplace(out);
    prepare_run_folder(out, options);
  }
  if (parallel) group->barrier("preparing the output folder");
  // All cores by default: shared by the ranks of one machine.
  const int threads =
      core::configure_threads(recipe.threads == 0 && parallel
                                  ? std::max(1, core::hardware_threads() / static_cast<int>(group->local_world_size()))
                                  : static_cast<int>(recipe.threads));
  c10::Device device = core::resolve_device(recipe.device);
  if (parallel) {
    // Each rank of a machine on a GPU of its own (cuda:LOCAL_RANK), made current before any CUDA work.
    device =
        dist::rank_device(recipe.device, group->local_rank(), group->local_world_size(), core::cuda_device_count());
    core::make_current(device);
  }

  report::Report rep;
  rep.recipe.name = recipe.name;
  rep.recipe.path = recipe.path.string();
  rep.recipe.sha256 = recipe.file_sha256;
  rep.recipe.effective = core::yaml_to_json(recipe.effective);
  rep.recipe.overrides = recipe.overrides;
  rep.class_names = recipe.data.class_names;

  RunState state{recipe.effective_sha256(), 0};
  if (options.resume && fs::exists(out / kStateFile)) {
    const RunState previous = read_state(out);
    if (previous.effective_sha256 != state.effective_sha256) {
      throw core::UsageError(cat(out.string(),
                                 ": the recipe (or its --set overrides) changed since the interrupted run; ",
                                 "rerun without --resume or use another --out"));
    }
    state.completed = previous.completed;
    if (state.completed > 0) {
      const auto old = report::read_report(out / "report.json");
      SHRINK_CHECK(static_cast<int64_t>(old.stages.size()) >= state.completed, (out / "report.json").string(),
                   " lists fewer stages than ", kStateFile, " says were completed");
      rep.stages.assign(old.stages.begin(), old.stages.begin() + state.completed);
      rep.initial = old.initial;
    }
  } else if (writer) {
    std::error_code ec;
    fs::remove_all(out / "work", ec);
    write_state(out, state);
  }

  core::log_info("recipe ", recipe.name, ": device ", device.str(), ", ", threads, " threads, seed ", recipe.seed,
                 parallel ? cat(", ", group->world_size(), " ranks (data-parallel)") : std::string());
  core::Stopwatch data_watch;
  auto data = data::load_splits(recipe.data);
  core::log_info("data ", recipe.data.name, ": ", data.train.size(), " train, ", data.val.size(), " val, ",
                 data.test.size(), " test samples (", data_watch.seconds(), " s)");
  if (!device.is_cpu())
    data = {data.train.to(device), data.val.size() ? data.val.to(device) : data.val, data.test.to(device)};
  const models::ModelInput input{data.train.sample_shape(), data.train.num_classes()};
  rep.environment = {
      SHRINK_VERSION, report::torch_version(),
      device.str(),   report::cpu_model_name(),
      threads,        latency_samples(data).defined() ? report::kLatencyOnTestSplit : report::kLatencyOnNoise};

  std::map<std::string, ModelSlot> slots;
  for (size_t i = 0; i < recipe.models.size(); ++i) {
    const auto& [name, declared] = recipe.models[i];
    // Each model gets its own seed so adding a model to a recipe leaves the others' weights alone.
    torch::manual_seed(data::mix_seed(recipe.seed, 500 + i));
    ModelSlot slot{name, declared, {}};
    slot.blueprint.input = input;
    if (const auto init = recipe.inits.find(name); init != recipe.inits.end()) {
      auto restored = models::initialize_from(init->second.file, slot.blueprint, init->second.prefix);
      slot.model = restored.model;
      slot.blueprint = restored.blueprint;
      slot.model.module->to(models::run_device(slot.blueprint, device));
      core::log_info("model ", name, ": starts from ", init->second.file.string());
    } else {
      slot.model = models::build(slot.blueprint);
      slot.model.module->to(device);
    }
    slots.emplace(name, std::move(slot));
  }
  // Without labels, every stage is scored against the reference model's outputs as brought:
  // computed before a completed stage's file replaces any model, so a resumed run compares alike.
  Reference reference{recipe.reference, {}};
  if (!recipe.reference.empty() && writer) {
    const auto& slot = slots.at(recipe.reference);
    reference.outputs = train::collect_outputs(*slot.model.module, slot.model.forward, data.test);
    core::log_info("reference ", recipe.reference, ": every stage is scored by its outputs' cosine to this model's ",
                   "on the ", data.test.size(), " test samples");
  }
  // The models as brought, measured once before any stage (a resumed run keeps its figures).
  if (rep.initial.empty() && writer) {
    for (const auto& [name, init] : recipe.inits) {
      rep.initial.push_back(measure_initial(recipe, slots.at(name), data, device, reference));
      const auto& m = rep.initial.back().metrics;
      const auto score = m.fidelity ? cat("mean cosine ", core::format_double("%.4f", m.fidelity->mean_cosine), " to ",
                                          m.fidelity->reference)
                                    : cat("test accuracy ", core::format_double("%.4f", m.accuracy));
      core::log_info("[initial] ", name, ": ", score, ", ", m.params, " params (sparsity ",
                     core::format_double("%.3f", m.sparsity), ")");
    }
  }
  // A completed stage's model comes back from its file, structure and all.
  for (int64_t i = 0; i < state.completed; ++i) {
    const auto& done = rep.stages[static_cast<size_t>(i)];
    fs::path file;
    try {
      file = out / report::bench_artifact(done.artifacts);
    } catch (const core::Error& e) {
      throw core::Error(cat("stage ", i, " of the interrupted run in ", out.string(), ": ", e.what()));
    }
    auto restored = models::restore_model(file);
    auto& slot = slots.at(done.model);
    slot.model = restored.model;
    slot.blueprint = restored.blueprint;
    slot.model.module->to(device);
    core::log_info("[", i, "] ", done.kind, " ", done.model, ": completed earlier, restored from ", file.string());
  }

  // Validation checks each stage against its model only where the data's shape is known without
  // loading the data (a manifest, synthetic data); now that it is loaded, every pending stage is
  // checked before any of them works.
  for (size_t i = static_cast<size_t>(state.completed); i < recipe.stages.size(); ++i) {
    try {
      recipe.stages[i]->check(*slots.at(recipe.stages[i]->model()).model.module);
    } catch (const core::UsageError& e) {
      throw core::UsageError(cat(recipe.path.string(), ": stages.", i, ".", recipe.stage_kinds[i], ": ", e.what()));
    }
  }

  // The ranks start each stage together, so no rank's work runs beside rank 0's latency timing.
  if (parallel) group->barrier("before the first stage");
  for (size_t i = static_cast<size_t>(state.completed); i < recipe.stages.size(); ++i) {
    const auto& stage = recipe.stages[i];
    const auto index = static_cast<int64_t>(i);
    StageContext ctx;
    ctx.index = index;
    ctx.models = &slots;
    ctx.data = &data;
    ctx.device = device;
    ctx.seed = data::mix_seed(recipe.seed, 1000 + i);
    ctx.work_dir = out / "work" / stage_dir_name(index, recipe.stage_kinds[i]);
    ctx.resume = options.resume;
    ctx.progress = options.progress && writer;
    ctx.group = group;
    if (writer) fs::create_directories(ctx.work_dir);
    // Reseeding per stage makes a resumed run's later stages draw the same numbers as an uninterrupted one.
    torch::manual_seed(ctx.seed);

    core::Stopwatch watch;
    auto outcome = stage->run(ctx);
    const double wall = watch.seconds();
    if (parallel) {
      dist::check_replicas(*group, dist::replica_tensors(*slots.at(stage->model()).model.module),
                           cat("after stage ", index));
      if (!writer) {
        group->barrier(cat("stage ", index, " measured"));
        continue;
      }
    }
    auto s =
        measure_stage(recipe, slots.at(stage->model()), data, device, index, recipe.stage_kinds[i], out, reference);
    s.wall_s = wall;
    s.training = std::move(outcome.training);
    s.modifiers = std::move(outcome.modifiers);
    s.sections = std::move(outcome.sections);
    rep.stages.push_back(s);
    report::write_report(out, rep);
    state.completed = index + 1;
    write_state(out, state);
    std::error_code ec;
    fs::remove_all(ctx.work_dir, ec);
    print_stage_line(s);
    if (parallel) group->barrier(cat("stage ", index, " measured"));
  }
  if (!writer) return rep;
  std::error_code ec;
  fs::remove(out / "work", ec);  // only succeeds when empty: nothing left to resume
  report::write_report(out, rep);
  core::log_info("report: ", (out / "report.md").string(), " and ", (out / "report.html").string(),
                 " (open it in a browser)");
  return rep;
}

}  // namespace shrink::recipe
