// The `shrink` executable: parses the command line and hands off to the recipe runner or library.
#include <boost/program_options.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "compress/quantize/int8_kernel_choice.h"
#include "core/allocator.h"
#include "core/atomic_file.h"
#include "core/blas_kernels.h"
#include "core/cpu_features.h"
#include "core/device.h"
#include "core/error.h"
#include "core/format.h"
#include "core/log.h"
#include "core/memory_budget.h"
#include "core/threads.h"
#include "core/torch_warnings.h"
#include "core/yaml_json.h"
#include "data/source.h"
#include "deploy/onnx_export.h"
#include "dist/launcher.h"
#include "dist/process_group.h"
#include "io/state_dict.h"
#include "models/feature_capture.h"
#include "models/inference_plan.h"
#include "models/input_check.h"
#include "models/registry.h"
#include "models/restore.h"
#include "models/torchscript.h"
#include "recipe/dataset_spec.h"
#include "recipe/recipe.h"
#include "recipe/runner.h"
#include "recipe/sensitivity_run.h"
#include "report/compare.h"
#include "report/measure.h"
#include "report/model_bench.h"
#include "train/metrics.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace shrink;
using core::cat;

namespace {

constexpr const char* kUsage =
    "usage: shrink <command> [options]\n"
    "\n"
    "commands:\n"
    "  run RECIPE        run a recipe's stages; writes state_dicts and report.{json,md,html}\n"
    "  validate RECIPE   check a recipe without running it (--print shows the effective recipe)\n"
    "  eval FILE         accuracy of a model file shrink wrote (or of weights with --model) on a dataset\n"
    "  inspect FILE      every tensor of a state_dict file (dtype, shape, storage, sparsity, bytes); --layers: layers\n"
    "  sensitivity RECIPE --model NAME   accuracy with each layer pruned alone at 10%..90%\n"
    "  compare RUN...    stages of several runs side by side, with Pareto fronts (Markdown, JSON, HTML)\n"
    "  bench FILE...     latency of saved models or run folders, interleaved, with ratios\n"
    "  export FILE --format onnx   a model file as ONNX, for ONNX Runtime, TensorRT, OpenVINO\n"
    "\n"
    "  shrink <command> --help   options of a command\n"
    "  shrink --version\n";

struct Parsed {
  po::variables_map vm;
  bool help = false;
};

// `positional` takes one value, or every remaining one when `many` (then as a vector<string>).
Parsed parse(const std::vector<std::string>& args, po::options_description& opts, const std::string& positional,
             bool many = false) {
  opts.add_options()("help,h", "show this help")(
      "max-memory", po::value<std::string>(),
      "memory budget every size is checked against before allocating, e.g. 8G or 512M (default: 80 % of physical "
      "memory)")("allow-non-finite", "load weights with NaN or infinite values (refused by default)");
  po::positional_options_description pos;
  if (!positional.empty()) {
    if (many) {
      opts.add_options()(positional.c_str(), po::value<std::vector<std::string>>(), "");
    } else {
      opts.add_options()(positional.c_str(), po::value<std::string>(), "");
    }
    pos.add(positional.c_str(), many ? -1 : 1);
  }
  Parsed p;
  try {
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), p.vm);
    po::notify(p.vm);
  } catch (const po::error& e) {
    throw core::UsageError(e.what());
  }
  p.help = p.vm.count("help") > 0;
  if (p.vm.count("allow-non-finite")) io::allow_non_finite_weights(true);
  if (p.vm.count("max-memory")) {
    core::set_memory_budget_bytes(core::parse_byte_size(p.vm["max-memory"].as<std::string>(), "--max-memory"));
  }
  return p;
}

std::string require_positional(const Parsed& p, const std::string& name, const std::string& command) {
  if (!p.vm.count(name))
    throw core::UsageError(cat("shrink ", command, ": missing ", name, " (see shrink ", command, " --help)"));
  return p.vm[name].as<std::string>();
}

std::vector<std::string> sets_of(const Parsed& p) {
  return p.vm.count("set") ? p.vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
}

// Flags that mirror a recipe key show the recipe's default, from the recipe's schema.
template <class T>
T recipe_default(const std::string& key) {
  return config::default_of(*recipe::recipe_schema(), key).as<T>();
}

const char* const kInt8KernelsHelp =
    "whose kernels int8 layers run: auto (shrink's where faster or where LibTorch lacks the op), shrink (shrink's "
    "alone, at every batch size), libtorch (LibTorch's quantized kernels alone)";

// --int8-kernels, read before any work so that a bad value costs nothing.
runtime::Int8Kernels int8_kernels_of(const Parsed& p) {
  return core::enum_from_name<runtime::Int8Kernels>(p.vm["int8-kernels"].as<std::string>(), "--int8-kernels");
}

// The data a file's model was trained on, as its description records it (Blueprint::data).
data::SourceOptions trained_data(const models::Blueprint& bp) {
  return recipe::parse_data(core::json_to_yaml(bp.data), bp.data_seed, bp.data_base_dir);
}

// The choice on every int8 layer of `model` (auto, the default, leaves the layers as restored).
void apply_int8_kernels(runtime::Int8Kernels kernels, const models::Model& model) {
  if (kernels != runtime::Int8Kernels::kAuto) compress::quantize::set_int8_kernels(*model.module, kernels);
}

// The report's latency batch sizes, "1,64".
std::string latency_batches() {
  const report::LatencyOptions defaults;  // batch_sizes() is a reference into it
  std::vector<std::string> sizes;
  for (const auto b : defaults.batch_sizes()) sizes.push_back(std::to_string(b));
  return core::join(sizes, ",");
}

// Moves a restored model to `asked`, except models whose kernels run on the CPU only (int8).
c10::Device move_to_run_device(const models::Restored& restored, const c10::Device& asked, const std::string& label) {
  const c10::Device device = models::run_device(restored.blueprint, asked);
  if (device != asked) core::log_info(label, ": its kernels run on the CPU only; it runs there");
  restored.model.module->to(device);
  return device;
}

void print_help(const std::string& synopsis, const po::options_description& opts) {
  std::cout << "usage: " << synopsis << "\n\n" << opts << "\n";
}

// The command line a rank of `--nproc N` runs: this one without --nproc.
std::vector<std::string> rank_command(const std::vector<std::string>& args) {
  std::vector<std::string> out{"shrink", "run"};
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
    } else if (args[i].rfind("--nproc=", 0) != 0) {
      out.push_back(args[i]);
    }
  }
  return out;
}

int cmd_run(const std::vector<std::string>& args) {
  po::options_description opts("shrink run options");
  opts.add_options()("out,o", po::value<std::string>(), "output folder (default: runs/<recipe name>)")(
      "set", po::value<std::vector<std::string>>()->composing(),
      "override a recipe value: key.path=value (repeatable)")(
      "resume", "continue an interrupted run in the output folder")("force", "replace the run the output folder holds")(
      "no-progress", "no progress bar or lines")("quiet,q", "only warnings and errors")(
      "nproc", po::value<int64_t>()->default_value(1),
      "data-parallel: run N processes on this machine, each training on 1/N of every batch (Gloo; NCCL "
      "and a GPU each, cuda:0 to cuda:N-1, on device cuda); a torchrun-started job is joined from RANK, WORLD_SIZE, "
      "MASTER_ADDR, MASTER_PORT instead")(
      "bucket-mb", po::value<double>()->default_value(dist::GroupOptions().bucket_mb()),
      "data-parallel: gradients are all-reduced in buckets of this many MB during backward; 0 = one bucket after "
      "backward");
  const auto p = parse(args, opts, "recipe");
  if (p.help) {
    print_help("shrink run RECIPE [--out DIR] [--set key.path=value]... [--resume | --force] [--nproc N]", opts);
    return 0;
  }
  const int64_t nproc = p.vm["nproc"].as<int64_t>();
  if (nproc < 1 || nproc > 1024) throw core::UsageError(cat("--nproc must be in [1, 1024], got ", nproc));
  dist::GroupOptions group;
  const bool joined = dist::options_from_environment(group);
  group.bucket_mb(p.vm["bucket-mb"].as<double>());
  if (group.bucket_mb() < 0) throw core::UsageError(cat("--bucket-mb must be >= 0, got ", group.bucket_mb()));
  if (nproc > 1 && joined) {
    throw core::UsageError("--nproc starts its own ranks; this process already has WORLD_SIZE (a torchrun job)");
  }
  // Validation happens here, once, before any rank starts.
  const auto recipe = recipe::load_recipe(require_positional(p, "recipe", "run"), sets_of(p));
  if (p.vm.count("quiet")) core::set_log_level(core::LogLevel::kWarn);
  if (nproc > 1) {
    // The last rank's GPU, before any rank starts: N ranks on cuda need N GPUs.
    dist::rank_device(recipe.device, nproc - 1, nproc, core::cuda_device_count());
    return dist::launch_local(dist::LaunchOptions().nproc(nproc).argv(rank_command(args)));
  }
  recipe::RunOptions ro;
  ro.out_dir = p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : fs::path("runs") / recipe.name;
  ro.resume = p.vm.count("resume") > 0;
  ro.force = p.vm.count("force") > 0;
  ro.progress = !p.vm.count("no-progress") && !p.vm.count("quiet");
  if (joined && group.world_size() > 1) {
    // Rank 0 speaks for the run; the others say only what goes wrong, and say who they are.
    if (group.rank() != 0) {
      core::set_log_prefix(cat("[rank ", group.rank(), "] "));
      core::set_log_level(std::max(core::log_level(), core::LogLevel::kWarn));
    }
    ro.group = std::make_shared<dist::ProcessGroup>(group);
  }
  recipe::run_recipe(recipe, ro);
  return 0;
}

int cmd_validate(const std::vector<std::string>& args) {
  po::options_description opts("shrink validate options");
  opts.add_options()("set", po::value<std::vector<std::string>>()->composing(),
                     "override a recipe value: key.path=value")(
      "print", "print the effective recipe (defaults filled, overrides applied)")(
      "keys", "print every recipe key with what it takes and its default (Markdown), then exit");
  const auto p = parse(args, opts, "recipe");
  if (p.help) {
    print_help("shrink validate RECIPE [--set key.path=value]... [--print] | shrink validate --keys", opts);
    return 0;
  }
  if (p.vm.count("keys")) {
    std::cout << recipe::key_reference_markdown(recipe::key_reference(*recipe::recipe_schema()));
    return 0;
  }
  const std::string path = require_positional(p, "recipe", "validate");
  const auto recipe = recipe::load_recipe(path, sets_of(p));
  if (p.vm.count("print")) {
    std::cout << recipe.effective_yaml();
  } else {
    std::cout << path << ": ok (" << recipe.stages.size() << " stage" << (recipe.stages.size() == 1 ? "" : "s") << ", "
              << recipe.models.size() << " model" << (recipe.models.size() == 1 ? "" : "s") << ")\n";
  }
  return 0;
}

// Validates an inline YAML spec given on the command line against a schema.
YAML::Node inline_spec(const std::string& option, const std::string& text, const recipe::SchemaPtr& schema) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw core::UsageError(cat("--", option, ": not valid YAML: ", e.msg));
  }
  const auto problems = recipe::validate(node, *schema, recipe::Source{"--" + option, {}});
  if (!problems.empty()) throw core::RecipeError(problems);
  recipe::fill_defaults(node, *schema);
  return node;
}

int cmd_eval(const std::vector<std::string>& args) {
  po::options_description opts("shrink eval options");
  opts.add_options()("model,m", po::value<std::string>(),
                     "the model in the file, for files without a description (a .pth from PyTorch): a name from "
                     "--recipe, or an inline spec such as '{arch: mlp, hidden: [300, 100]}'")(
      "recipe,r", po::value<std::string>(), "take the data (and --model names) from this recipe")(
      "data,d", po::value<std::string>(),
      "inline data spec (default: the data the file's model was trained on, else {dataset: fashion-mnist})")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a recipe value: key.path=value")(
      "batch-size", po::value<int64_t>()->default_value(train::kEvalBatch), "evaluation batch size")(
      "threads", po::value<int>()->default_value(recipe_default<int>("threads")), "intra-op threads (0 = all cores)")(
      "device", po::value<std::string>()->default_value(recipe_default<std::string>("device")),
      "cpu | cuda | cuda:N | auto (int8 models stay on the CPU)")("json", "print JSON")(
      "no-progress", "no progress bar or lines")("plain",
                                                 "run the model's own forward, not the fastest path planned for it")(
      "torchscript", "allow loading the TorchScript module the model was declared from (it is code)")(
      "int8-kernels", po::value<std::string>()->default_value("auto"), kInt8KernelsHelp);
  const auto p = parse(args, opts, "weights");
  if (p.vm.count("torchscript")) models::allow_torchscript(true);
  if (p.help) {
    print_help("shrink eval FILE [--model SPEC|NAME] [--recipe RECIPE | --data SPEC] [--device D] [--plain]", opts);
    return 0;
  }
  const fs::path weights = require_positional(p, "weights", "eval");
  const auto int8_kernels = int8_kernels_of(p);
  const int64_t batch = p.vm["batch-size"].as<int64_t>();
  if (batch <= 0) throw core::UsageError(cat("--batch-size must be > 0, got ", batch));

  // The model: the file's own description unless --model says otherwise.
  std::optional<models::Blueprint> given;
  std::optional<recipe::Recipe> recipe;
  // --set overrides a recipe's keys; without one there is nothing it could change.
  if (p.vm.count("set") && !p.vm.count("recipe")) {
    throw core::UsageError(
        cat("shrink eval: --set ", sets_of(p).front(), " needs --recipe (it overrides a recipe's keys)"));
  }
  if (p.vm.count("recipe")) recipe = recipe::load_recipe(p.vm["recipe"].as<std::string>(), sets_of(p));
  if (p.vm.count("model")) {
    const std::string model_arg = p.vm["model"].as<std::string>();
    if (recipe) {
      given = recipe->model(model_arg);
    } else {
      const auto spec = inline_spec("model", model_arg, models::model_schema());
      given = models::declared_blueprint(spec, fs::current_path());
    }
  }
  // Read once: the description says which data to load, then the same entries are restored.
  std::optional<io::StoredFile> stored;
  if (!given) stored = io::read_stored_file(weights);
  const auto description = stored ? stored->description : nlohmann::json();
  if (!given && description.is_null()) {
    throw core::UsageError(
        cat(weights.string(), ": no model description in the file; say which model it holds with --model"));
  }

  // The data: --data, else the recipe's, else what the model was trained on.
  data::SourceOptions data_options;
  if (p.vm.count("data")) {
    data_options = recipe::parse_data(inline_spec("data", p.vm["data"].as<std::string>(), recipe::data_schema()), 0,
                                      fs::current_path());
  } else if (recipe) {
    data_options = recipe->data;
  } else if (!description.is_null() && description.contains("data")) {
    data_options = trained_data(models::Blueprint::from_json(description, weights.string()));
  } else {
    data_options = recipe::parse_data(inline_spec("data", "{dataset: fashion-mnist}", recipe::data_schema()), 0,
                                      fs::current_path());
  }
  core::configure_threads(p.vm["threads"].as<int>());
  const c10::Device asked = core::resolve_device(p.vm["device"].as<std::string>());
  const auto test = data::load_test_split(data_options);
  const auto sample_shape = test.sample_shape();
  const auto batch_dims = models::batch_shape(batch, sample_shape);
  if (const auto why = core::over_budget(core::tensor_bytes(batch_dims, sizeof(float), "--batch-size")); !why.empty()) {
    throw core::UsageError(cat("--batch-size ", batch, ": a batch of ", batch, " samples ", why));
  }
  models::Restored restored;
  if (given) {
    given->input = {sample_shape, test.num_classes()};
    restored = models::restore_model_as(weights, *given);
  } else {
    restored = models::restore_model(*stored, weights);
  }
  const c10::Device device = move_to_run_device(restored, asked, weights.string());
  const auto& model = restored.model;
  apply_int8_kernels(int8_kernels, model);
  models::check_takes_samples(model, sample_shape, device, weights.string());
  const auto plan =
      models::plan_inference(model, sample_shape, batch, device, models::InferenceOptions().fast(!p.vm.count("plain")));
  const auto r = train::evaluate(*model.module, plan.forward, test.to(device), batch,
                                 !p.vm.count("json") && !p.vm.count("no-progress"));
  if (p.vm.count("json")) {
    std::cout << "{\"accuracy\": " << r.accuracy << ", \"loss\": " << r.loss << ", \"samples\": " << r.samples
              << ", \"per_class_accuracy\": [";
    for (size_t i = 0; i < r.per_class_accuracy.size(); ++i) std::cout << (i ? ", " : "") << r.per_class_accuracy[i];
    std::cout << "]}\n";
  } else {
    std::printf("accuracy %.4f  loss %.4f  (%lld test samples of %s)\n", r.accuracy, r.loss,
                static_cast<long long>(r.samples), data_options.name.c_str());
  }
  return 0;
}

// The layers FeatureCapture can record, with each one's output shape for one sample.
int inspect_layers(const fs::path& file, bool json) {
  auto restored = models::restore_model(file);
  const auto names = models::capturable_layers(restored.model.module);
  std::vector<int64_t> shape{1};
  for (const auto d : restored.blueprint.input.shape) shape.push_back(d);
  models::FeatureCapture capture(restored.model.module, names);
  {
    at::NoGradGuard no_grad;
    restored.model.forward(at::zeros(shape));
  }
  const auto modules = restored.model.module->named_modules();
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& name : names) {
    const auto it = capture.outputs().find(name);
    nlohmann::json shape_json = nullptr;  // inside a group fused for int8: no output of its own
    if (it != capture.outputs().end()) shape_json = it->second.sizes().vec();
    // "torch::nn::Conv2dImpl" → "Conv2d", "shrink::models::ResidualBlockImpl" → "ResidualBlock"
    std::string type = modules[name]->name();
    type = type.substr(type.rfind(':') == std::string::npos ? 0 : type.rfind(':') + 1);
    if (type.size() > 4 && type.compare(type.size() - 4, 4, "Impl") == 0) type.resize(type.size() - 4);
    rows.push_back({{"name", name}, {"layer", type}, {"output_shape", shape_json}});
  }
  if (json) {
    std::cout << nlohmann::json{{"file", file.string()}, {"layers", rows}}.dump(2) << "\n";
    return 0;
  }
  std::printf("%-24s %-28s %s\n", "layer", "type", "output (one sample)");
  for (const auto& r : rows) {
    std::string out = "fused into its group";
    if (!r["output_shape"].is_null()) {
      out.clear();
      for (const auto& d : r["output_shape"]) out += (out.empty() ? "" : "x") + std::to_string(d.get<int64_t>());
    }
    std::printf("%-24s %-28s %s\n", r["name"].get<std::string>().c_str(), r["layer"].get<std::string>().c_str(),
                out.c_str());
  }
  return 0;
}

int cmd_inspect(const std::vector<std::string>& args) {
  po::options_description opts("shrink inspect options");
  opts.add_options()("json", "print JSON")("layers",
                                           "the model's layers (names for feature distillation) and output shapes")(
      "torchscript", "allow loading the TorchScript module the model was declared from (it is code)");
  const auto p = parse(args, opts, "file");
  if (p.vm.count("torchscript")) models::allow_torchscript(true);
  if (p.help) {
    print_help("shrink inspect FILE (.pt, .pth or .h5)", opts);
    return 0;
  }
  const fs::path file = require_positional(p, "file", "inspect");
  if (p.vm.count("layers")) return inspect_layers(file, p.vm.count("json") > 0);
  const auto stored = io::read_stored_file(file).entries;
  const auto decoded = io::decode_entries(stored, file.string());
  nlohmann::json rows = nlohmann::json::array();
  int64_t total_bytes = 0, total_numel = 0, total_nonzero = 0;
  for (size_t i = 0; i < stored.size(); ++i) {
    const auto& t = decoded[i].tensor;
    const int64_t nonzero = t.count_nonzero().item<int64_t>();
    const int64_t bytes = stored[i].pattern_of.empty() ? stored[i].data.stored_bytes() : 0;
    const std::string storage = stored[i].pattern_of.empty() ? io::encoding_name(stored[i].data.encoding)
                                                             : "pattern of " + stored[i].pattern_of;
    total_bytes += bytes;
    if (at::isFloatingType(t.scalar_type()) && !stored[i].is_buffer) {
      total_numel += t.numel();
      total_nonzero += nonzero;
    }
    rows.push_back({{"name", stored[i].name},
                    {"dtype", std::string(c10::toString(t.scalar_type()))},
                    {"shape", t.sizes().vec()},
                    {"storage", storage},
                    {"buffer", stored[i].is_buffer},
                    {"sparsity", t.numel() ? 1.0 - static_cast<double>(nonzero) / static_cast<double>(t.numel()) : 0.0},
                    {"bytes", bytes}});
  }
  const auto file_bytes = static_cast<int64_t>(fs::file_size(file));
  const double parameter_sparsity =
      total_numel ? 1.0 - static_cast<double>(total_nonzero) / static_cast<double>(total_numel) : 0.0;
  if (p.vm.count("json")) {
    std::cout << nlohmann::json{{"file", file.string()},
                                {"file_bytes", file_bytes},
                                {"parameter_sparsity", parameter_sparsity},
                                {"tensors", rows}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::printf("%-36s %-6s %-16s %-28s %8s %10s\n", "tensor", "dtype", "shape", "storage", "sparsity", "bytes");
  for (const auto& r : rows) {
    std::string shape;
    for (const auto& d : r["shape"]) shape += (shape.empty() ? "" : "x") + std::to_string(d.get<int64_t>());
    std::printf("%-36s %-6s %-16s %-28s %8.4f %10s\n", r["name"].get<std::string>().c_str(),
                r["dtype"].get<std::string>().c_str(), shape.empty() ? "scalar" : shape.c_str(),
                r["storage"].get<std::string>().c_str(), r["sparsity"].get<double>(),
                core::human_bytes(r["bytes"].get<int64_t>()).c_str());
  }
  std::printf("%zu tensors, parameter sparsity %.4f, %s of tensor data, file %s\n", rows.size(), parameter_sparsity,
              core::human_bytes(total_bytes).c_str(), core::human_bytes(file_bytes).c_str());
  return 0;
}

int cmd_export(const std::vector<std::string>& args) {
  po::options_description opts("shrink export options");
  const deploy::OnnxExportOptions defaults;
  opts.add_options()("format", po::value<std::string>(), "onnx (the only format so far)")(
      "out,o", po::value<std::string>(), "the file to write (default: FILE with the extension .onnx)")(
      "opset", po::value<int64_t>()->default_value(defaults.opset()),
      cat("ONNX opset, ", deploy::kMinOnnxOpset, "..", deploy::kMaxOnnxOpset).c_str())(
      "keep-batch-norm", "keep BatchNormalization nodes (default: folded into the Conv or Gemm before them)");
  const auto p = parse(args, opts, "file");
  if (p.help) {
    print_help("shrink export FILE (.pt, .pth or .h5) --format onnx [--out F] [--opset N]", opts);
    return 0;
  }
  const fs::path file = require_positional(p, "file", "export");
  if (!p.vm.count("format")) throw core::UsageError("export needs --format onnx");
  const auto format = p.vm["format"].as<std::string>();
  if (format != "onnx") throw core::UsageError(cat("--format: shrink exports 'onnx', got '", format, "'"));
  const auto options = deploy::OnnxExportOptions()
                           .opset(p.vm["opset"].as<int64_t>())
                           .fold_batch_norm(!p.vm.count("keep-batch-norm"))
                           .metadata({{"source_file", file.filename().string()}});
  deploy::validate(options);
  fs::path out =
      p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : fs::path(file).replace_extension(".onnx");
  core::require_parent_folder(out);
  const auto restored = models::restore_model(file);
  const auto batch_norms = deploy::export_onnx(out, restored.model, restored.blueprint, options);
  // Only a model with BatchNorm layers has any to fold: an MLP or a bert says nothing of them.
  std::string batch_norm_note;
  if (batch_norms.folded) batch_norm_note += cat(", ", batch_norms.folded, " BatchNorm folded");
  if (batch_norms.kept) batch_norm_note += cat(", ", batch_norms.kept, " BatchNorm kept");
  if (!batch_norm_note.empty()) batch_norm_note = " (" + batch_norm_note.substr(2) + ")";
  std::printf("%s: ONNX opset %lld, %s%s\n", out.string().c_str(), static_cast<long long>(options.opset()),
              core::human_bytes(static_cast<int64_t>(fs::file_size(out))).c_str(), batch_norm_note.c_str());
  return 0;
}

int cmd_sensitivity(const std::vector<std::string>& args) {
  po::options_description opts("shrink sensitivity options");
  opts.add_options()("model,m", po::value<std::string>(), "the recipe model to analyse")(
      "weights,w", po::value<std::string>(),
      "trained weights (default: the model's last float, not int8, file in the run folder)")(
      "out,o", po::value<std::string>(), "the run folder (default: runs/<recipe name>)")(
      "levels", po::value<std::vector<double>>()->multitoken(), "sparsity levels (default 0.1 0.2 ... 0.9)")(
      "include", po::value<std::vector<std::string>>()->composing(),
      "regex of tensors to analyse (default: weights of rank >= 2)")(
      "structure", po::value<std::string>(), "weights (default) | channels: each layer's output channels")(
      "method", po::value<std::string>(), "channels ranked by their filter's l1 (default) or l2 norm")(
      "residual", po::value<std::string>(),
      "channels: whole (default) leaves residual channels out; together sweeps each residual stream")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a recipe value: key.path=value")(
      "device", po::value<std::string>(), "cpu | cuda | cuda:N | auto (default: the recipe's device)")(
      "no-progress", "no progress bar or lines");
  const auto p = parse(args, opts, "recipe");
  if (p.help) {
    print_help(
        "shrink sensitivity RECIPE --model NAME [--weights FILE] [--out DIR] [--levels 0.1 0.5 ...] [--device D]",
        opts);
    return 0;
  }
  auto sets = sets_of(p);
  if (p.vm.count("device")) sets.push_back("device=" + p.vm["device"].as<std::string>());
  const auto recipe = recipe::load_recipe(require_positional(p, "recipe", "sensitivity"), sets);
  if (!p.vm.count("model")) throw core::UsageError("shrink sensitivity: --model is required");
  recipe::SensitivityRunOptions so;
  so.model = p.vm["model"].as<std::string>();
  so.out_dir = p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : fs::path("runs") / recipe.name;
  if (p.vm.count("weights")) so.weights = p.vm["weights"].as<std::string>();
  if (p.vm.count("levels")) so.levels = p.vm["levels"].as<std::vector<double>>();
  if (p.vm.count("include")) so.include = p.vm["include"].as<std::vector<std::string>>();
  if (p.vm.count("structure")) {
    so.structure =
        core::enum_from_name<compress::prune::PruneStructure>(p.vm["structure"].as<std::string>(), "--structure");
  }
  if (p.vm.count("method")) {
    so.method = core::enum_from_name<compress::prune::PruneMethod>(p.vm["method"].as<std::string>(), "--method");
  }
  if (p.vm.count("residual")) {
    if (so.structure != compress::prune::PruneStructure::kChannels) {
      throw core::UsageError("shrink sensitivity: --residual is for --structure channels");
    }
    so.residual =
        core::enum_from_name<compress::prune::ResidualChannels>(p.vm["residual"].as<std::string>(), "--residual");
  }
  so.progress = !p.vm.count("no-progress");
  const auto result = recipe::run_sensitivity(recipe, so);
  std::printf("%-28s", so.structure == compress::prune::PruneStructure::kChannels ? "layer \\ channels pruned"
                                                                                  : "tensor \\ sparsity");
  for (double l : result.levels) std::printf(" %6.0f%%", 100 * l);
  std::printf("\n");
  for (const auto& [tensor, accs] : result.tensors) {
    std::printf("%-28s", tensor.c_str());
    for (double a : accs) std::printf(" %7.4f", a);
    std::printf("\n");
  }
  std::printf("baseline accuracy %.4f on %s data; written to %s\n", result.baseline_accuracy, result.split.c_str(),
              (so.out_dir / ("sensitivity-" + so.model + ".json")).string().c_str());
  return 0;
}

int cmd_compare(const std::vector<std::string>& args) {
  po::options_description opts("shrink compare options");
  opts.add_options()("baseline,b", po::value<int64_t>()->default_value(0),
                     "row the others are compared with (rows: the runs' stages in order, from 0)")(
      "out,o", po::value<std::string>(), "write compare.md, compare.json and compare.html into this folder")(
      "json", "print the comparison as JSON instead of Markdown");
  const auto p = parse(args, opts, "runs", true);
  if (p.help) {
    print_help("shrink compare RUN_OR_REPORT... [--baseline N] [--out DIR] [--json]", opts);
    return 0;
  }
  if (!p.vm.count("runs")) throw core::UsageError("shrink compare: give one or more run folders or report.json files");
  const int64_t baseline = p.vm["baseline"].as<int64_t>();
  if (baseline < 0) throw core::UsageError(cat("--baseline must be >= 0, got ", baseline));
  std::vector<report::ComparedRun> runs;
  for (const auto& path : p.vm["runs"].as<std::vector<std::string>>()) runs.push_back(report::load_compared_run(path));
  const auto c = report::compare(std::move(runs), static_cast<size_t>(baseline));
  if (p.vm.count("json")) {
    std::cout << report::to_json(c).dump(2) << "\n";
  } else {
    std::cout << report::to_markdown(c);
  }
  if (p.vm.count("out")) {
    const fs::path out = p.vm["out"].as<std::string>();
    report::write_comparison(out, c);
    core::log_info("comparison: ", (out / "compare.md").string(), ", ", (out / "compare.json").string(), " and ",
                   (out / "compare.html").string(), " (open it in a browser)");
  }
  return 0;
}

// "1,8,64" → {1, 8, 64}; a UsageError naming the flag for anything else.
std::vector<int64_t> batch_list(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v <= 0 || v > (1 << 20)) {
      throw core::UsageError(
          cat("--batch: expected batch sizes in [1, 1048576] separated by commas (1,8,64), got '", text, "'"));
    }
    out.push_back(v);
  }
  if (out.empty()) throw core::UsageError("--batch: expected at least one batch size (1,8,64)");
  return out;
}

// A model file as given, or every stage of a run folder (its report's first-listed artifact).
std::vector<std::pair<std::string, fs::path>> bench_inputs(const fs::path& arg) {
  std::error_code ec;
  if (!fs::is_directory(arg, ec)) return {{arg.filename().string(), arg}};
  const auto report_path = arg / "report.json";
  if (!fs::is_regular_file(report_path, ec)) {
    throw core::UsageError(cat(arg.string(), ": a folder without report.json; give model files or run folders"));
  }
  std::vector<std::pair<std::string, fs::path>> out;
  const auto rep = report::read_report(report_path);
  const std::string run = (arg.has_filename() ? arg : arg.parent_path()).filename().string();  // "runs/x/" → "x"
  for (const auto& s : rep.stages) {
    if (s.artifacts.empty()) continue;
    out.emplace_back(cat(run, "/", s.index, "-", s.kind), arg / report::bench_artifact(s.artifacts));
  }
  if (out.empty()) throw core::UsageError(cat(arg.string(), ": the run has no saved models yet"));
  return out;
}

// The test samples of the data a file's model was trained on (its description's), at most `rows`
// of them, loaded once per data spec: the models of one run share theirs. `name` gets the data's.
at::Tensor bench_samples(const std::string& label, const models::Blueprint& bp, int64_t rows,
                         std::map<std::string, std::pair<std::string, at::Tensor>>& loaded, std::string& name) {
  const std::string key = cat(bp.data.dump(), "\n", bp.data_base_dir, "\n", bp.data_seed);
  auto it = loaded.find(key);
  if (it == loaded.end()) {
    auto options = trained_data(bp);
    options.test_limit = rows;
    data::Dataset test;
    try {
      test = data::load_test_split(options);
    } catch (const core::Error& e) {
      throw core::Error(cat(label, ": its test data (", options.name, ") did not load: ", e.what(),
                            "; --inputs noise times it on N(0, 1) noise instead"));
    }
    if (test.size() == 0) {
      throw core::Error(cat(label, ": its data (", options.name,
                            ") has no test samples; --inputs noise times it on N(0, 1) noise instead"));
    }
    // A copy: the limited split is a view that would keep the whole one alive.
    it = loaded.emplace(key, std::make_pair(options.name, test.inputs.clone())).first;
  }
  name = it->second.first;
  return it->second.second;
}

int cmd_bench(const std::vector<std::string>& args) {
  po::options_description opts("shrink bench options");
  opts.add_options()("batch", po::value<std::string>()->default_value(latency_batches()),
                     "batch sizes, comma-separated")(
      "threads", po::value<int>()->default_value(recipe_default<int>("threads")), "intra-op threads (0 = all cores)")(
      "device", po::value<std::string>()->default_value(recipe_default<std::string>("device")),
      "cpu | cuda | cuda:N | auto (int8 models stay on the CPU)")("budget", po::value<double>()->default_value(10.0),
                                                                  "seconds per batch size, all models together")(
      "json", po::value<std::string>(), "also write the results to this JSON file")(
      "no-progress", "no progress bar or lines")("plain",
                                                 "time each model's own forward, not the fastest path planned for it")(
      "torchscript", "allow loading the TorchScript module the model was declared from (it is code)")(
      "length", po::value<int64_t>(), "text models: time sequences of this many tokens (default: the data's length)")(
      "int8-kernels", po::value<std::string>()->default_value("auto"), kInt8KernelsHelp)(
      "inputs", po::value<std::string>()->default_value("auto"),
      "what each model is timed on: data (the test split of the data its file says it was trained on), "
      "noise (N(0, 1); token ids of 1 for text models), auto (data where the file names its data, else noise)");
  const auto p = parse(args, opts, "models", true);
  if (p.vm.count("torchscript")) models::allow_torchscript(true);
  if (p.help) {
    print_help(
        "shrink bench FILE_OR_RUN... [--batch 1,8,64] [--threads N] [--device D] [--budget S] [--json FILE] [--plain] "
        "[--length L] [--int8-kernels K] [--inputs auto|data|noise]",
        opts);
    return 0;
  }
  if (!p.vm.count("models")) throw core::UsageError("shrink bench: give one or more model files or run folders");
  const auto batches = batch_list(p.vm["batch"].as<std::string>());
  const auto int8_kernels = int8_kernels_of(p);
  const std::string inputs = p.vm["inputs"].as<std::string>();
  if (inputs != "auto" && inputs != "data" && inputs != "noise") {
    throw core::UsageError(cat("--inputs must be auto, data or noise, got '", inputs, "'"));
  }
  if (inputs == "data" && p.vm.count("length")) {
    throw core::UsageError(
        "--inputs data times text models on their data's sequences; --length times them on placeholder ids of "
        "another length: give one of them");
  }
  const double budget = p.vm["budget"].as<double>();
  if (!(budget > 0 && budget <= 86400))
    throw core::UsageError(cat("--budget must be in (0, 86400] seconds, got ", budget));
  // Checked before the timing: a path that cannot take the results fails now, not minutes later.
  if (p.vm.count("json")) {
    core::require_parent_folder(p.vm["json"].as<std::string>());
    core::require_replaceable(p.vm["json"].as<std::string>());
  }
  const int threads = core::configure_threads(p.vm["threads"].as<int>());
  const c10::Device device = core::resolve_device(p.vm["device"].as<std::string>());
  std::vector<report::BenchModel> models;
  std::vector<std::string> timed_on;  // each model's inputs, as the table names them
  std::map<std::string, std::pair<std::string, at::Tensor>> loaded;
  const int64_t most = *std::max_element(batches.begin(), batches.end());
  for (const auto& arg : p.vm["models"].as<std::vector<std::string>>()) {
    for (const auto& [label, file] : bench_inputs(arg)) {
      const auto restored = models::restore_model(file);
      const c10::Device run_on = move_to_run_device(restored, device, label);
      apply_int8_kernels(int8_kernels, restored.model);
      auto shape = restored.blueprint.input.shape;
      const bool text = restored.model.input_dtype == at::kLong;
      if (p.vm.count("length") && text) shape = {p.vm["length"].as<int64_t>()};
      at::Tensor samples;
      std::string on = text ? "ids of 1" : "noise";
      if (inputs == "data" && restored.blueprint.data.is_null()) {
        throw core::UsageError(cat(label, ": the file does not say which data its model was trained on; ",
                                   "--inputs noise times it on N(0, 1) noise"));
      }
      if (inputs != "noise" && !restored.blueprint.data.is_null() && !(text && p.vm.count("length"))) {
        std::string name;
        samples = bench_samples(label, restored.blueprint, most, loaded, name);
        on = name + " test";
      }
      models.push_back(report::BenchModel{label, restored.model, shape, run_on, samples});
      timed_on.push_back(on);
    }
  }
  if (p.vm.count("length")) {
    const auto length = p.vm["length"].as<int64_t>();
    if (length < 1) throw core::UsageError(cat("--length must be >= 1, got ", length));
    if (std::none_of(models.begin(), models.end(),
                     [](const report::BenchModel& m) { return m.model.input_dtype == at::kLong; })) {
      throw core::UsageError("--length: none of the models takes token ids (it sets a text model's sequence length)");
    }
  }
  core::log_info("bench: ", models.size(), " model", models.size() == 1 ? "" : "s", ", ", threads, " threads, batches ",
                 p.vm["batch"].as<std::string>(), ", up to ", budget, " s per batch size, interleaved");
  const auto results = report::bench_models(models, report::BenchOptions()
                                                        .batch_sizes(batches)
                                                        .budget_s(budget)
                                                        .progress(!p.vm.count("no-progress"))
                                                        .fast_path(!p.vm.count("plain")));
  std::printf("%-34s %6s %10s %10s %10s %12s %7s %7s %10s %9s  %-20s %s\n", "model", "batch", "p50 ms", "p90 ms",
              "p99 ms", "samples/s", "iters", "stable", "peak RSS", "vs first", "inputs", "path");
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    const auto& first = results[i - i % models.size()];  // the first model at this batch size
    const double speedup = first.latency.p50_ms / std::max(r.latency.p50_ms, 1e-12);
    const auto& on = timed_on[i % models.size()];
    std::printf("%-34s %6lld %10.3f %10.3f %10.3f %12.0f %7lld %7s %10s %8.2fx  %-20s %s\n", r.label.c_str(),
                static_cast<long long>(r.latency.batch), r.latency.p50_ms, r.latency.p90_ms, r.latency.p99_ms,
                r.latency.samples_per_s, static_cast<long long>(r.iterations), r.stable ? "yes" : "budget",
                r.peak_rss_bytes < 0 ? "?" : core::human_bytes(r.peak_rss_bytes).c_str(), speedup, on.c_str(),
                r.latency.path.c_str());
    rows.push_back({{"model", r.label},
                    {"device", models[i % models.size()].device.str()},
                    {"batch", r.latency.batch},
                    {"p50_ms", r.latency.p50_ms},
                    {"p90_ms", r.latency.p90_ms},
                    {"p99_ms", r.latency.p99_ms},
                    {"samples_per_s", r.latency.samples_per_s},
                    {"iterations", r.iterations},
                    {"stable", r.stable},
                    {"peak_rss_bytes", r.peak_rss_bytes},
                    {"speedup_vs_first", speedup},
                    {"inputs", on},
                    {"path", r.latency.path}});
  }
  std::printf("vs first: the first model's p50 over this one's, at the same batch size (>1: faster)\n");
  if (p.vm.count("json")) {
    const nlohmann::json doc = {{"schema", "shrink.bench/1"},      {"threads", threads}, {"device", device.str()},
                                {"cpu", report::cpu_model_name()}, {"budget_s", budget}, {"results", rows}};
    core::write_text_atomically(p.vm["json"].as<std::string>(), doc.dump(2) + "\n");
  }
  return 0;
}

int dispatch(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string cmd = args.front();
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "--version" || cmd == "version") {
    const auto paths = core::cpu_paths();  // first: a bad SHRINK_MAX_CPU_ISA is the only output
    std::cout << "shrink " << SHRINK_VERSION << " (LibTorch " << TORCH_VERSION << ")\n"
              << "CPU paths: " << paths << "\n";
    if (const auto blas = core::openblas_core(); !blas.empty()) std::cout << "BLAS: OpenBLAS, " << blas << " kernels\n";
    return 0;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (cmd == "run") return cmd_run(rest);
  if (cmd == "validate") return cmd_validate(rest);
  if (cmd == "eval") return cmd_eval(rest);
  if (cmd == "inspect") return cmd_inspect(rest);
  if (cmd == "sensitivity") return cmd_sensitivity(rest);
  if (cmd == "compare") return cmd_compare(rest);
  if (cmd == "bench") return cmd_bench(rest);
  if (cmd == "export") return cmd_export(rest);
  throw core::UsageError(cat("unknown command '", cmd, "'\n", kUsage));
}

}  // namespace

int main(int argc, char** argv) {
  shrink::core::restart_on_better_blas_kernels(argv);
  shrink::core::keep_freed_memory_for_reuse();
  // Past a file size limit (ulimit -f) write() then fails with EFBIG and shrink says which file,
  // as it does for a full disk, instead of the kernel killing it mid-write.
  ::signal(SIGXFSZ, SIG_IGN);
  shrink::core::send_torch_warnings_to_log();
  try {
    if (const char* level = std::getenv("SHRINK_LOG"); level && *level)
      core::set_log_level(core::enum_from_name<core::LogLevel>(level, "SHRINK_LOG"));
    return dispatch(argc, argv);
  } catch (const core::RecipeError& e) {
    core::log_line(core::LogLevel::kError, cat("recipe invalid (", e.diagnostics().size(), " problem",
                                               e.diagnostics().size() == 1 ? "" : "s", "):\n", e.what()));
    return 2;
  } catch (const core::Error& e) {
    core::log_line(core::LogLevel::kError, e.what());
    return core::exit_code_for(e);
  } catch (const c10::Error& e) {
    core::log_line(core::LogLevel::kError, e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    core::log_line(core::LogLevel::kError, e.what());
    return 1;
  }
}
