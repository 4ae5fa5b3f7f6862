// TorchScript models as shrink models, and their registration as `arch: torchscript`.
#include "models/torchscript.h"

#include <torch/csrc/jit/ir/subgraph_matcher.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/subgraph_rewrite.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/library.h>
#include <torch/script.h>

#include <atomic>
#include <map>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/registration.h"
#include "core/sha256.h"
#include "models/registry.h"
#include "runtime/relu_max_pool.h"

namespace shrink::models {

using core::cat;

namespace {

std::atomic<bool> g_allowed{false};

// Mirrors `scripted`'s tree of submodules in `mirror`, registering each parameter and buffer
// tensor (the same tensor, not a copy) under its own name.
void mirror_tree(torch::nn::Module& mirror, const torch::jit::Module& scripted) {
  for (const auto& p : scripted.named_parameters(/*recurse=*/false)) {
    mirror.register_parameter(p.name, p.value, p.value.requires_grad());
  }
  for (const auto& b : scripted.named_buffers(/*recurse=*/false)) mirror.register_buffer(b.name, b.value);
  for (const auto& child : scripted.named_children()) {
    auto sub = std::make_shared<torch::nn::Module>(child.name);
    mirror_tree(*sub, child.value);
    mirror.register_module(child.name, sub);
  }
}

std::string file_sha256(const std::filesystem::path& file) { return core::sha256_hex(core::read_text_file(file)); }

// A list constant of ints, [v] standing for [v, v] as max_pool2d reads it.
bool int_list_is(const torch::jit::Value* value, int64_t expected, bool empty_ok) {
  const auto constant = torch::jit::toIValue(value);
  if (!constant || !constant->isIntList()) return false;
  const auto list = constant->toIntVector();
  if (list.empty()) return empty_ok;
  for (const auto v : list) {
    if (v != expected) return false;
  }
  return list.size() <= 2;
}

// relu then 2x2, stride-2 max pooling (the end of most conv blocks) becomes shrink's fused kernel
// in the graph shrink runs: one pass forward and one backward instead of four (runtime/relu_max_pool.h).
void fuse_relu_max_pool(torch::jit::Module& module) {
  auto graph = module.get_method("forward").graph();
  // One Inline pass leaves the calls of the methods it inlined (a traced Sequential's children).
  const auto has_calls = [&] {
    for (const auto* node : graph->nodes()) {
      if (node->kind() == c10::prim::CallMethod || node->kind() == c10::prim::CallFunction) return true;
    }
    return false;
  };
  for (int depth = 0; depth < 64 && has_calls(); ++depth) torch::jit::Inline(*graph);
  torch::jit::ConstantPropagation(graph);
  const auto only_2x2 = [](const torch::jit::Match& match,
                           const std::unordered_map<std::string, torch::jit::Value*>& vmap) {
    const auto value = [&](const char* name) { return match.values_map.at(vmap.at(name)); };
    const auto ceil = torch::jit::toIValue(value("c"));
    return int_list_is(value("k"), 2, false) && int_list_is(value("s"), 2, true) && int_list_is(value("p"), 0, false) &&
           int_list_is(value("d"), 1, false) && ceil && ceil->isBool() && !ceil->toBool();
  };
  for (const char* relu : {"aten::relu", "aten::relu_"}) {
    torch::jit::SubgraphRewriter rewriter;
    rewriter.RegisterRewritePattern(cat(R"(
graph(%x, %k, %s, %p, %d, %c):
  %r = )",
                                        relu, R"((%x)
  %y = aten::max_pool2d(%r, %k, %s, %p, %d, %c)
  return (%y))"),
                                    R"(
graph(%x, %k, %s, %p, %d, %c):
  %y = shrink::relu_max_pool2x2(%x)
  return (%y))");
    rewriter.runOnGraph(graph, only_2x2);
  }
}

at::Tensor relu_max_pool_op(const at::Tensor& x) { return runtime::relu_max_pool2x2(x); }

}  // namespace

TORCH_LIBRARY(shrink, m) { m.def("relu_max_pool2x2(Tensor x) -> Tensor"); }
TORCH_LIBRARY_IMPL(shrink, CompositeImplicitAutograd, m) { m.impl("relu_max_pool2x2", relu_max_pool_op); }

namespace {}  // namespace

const config::OptionsSpec<TorchScriptOptions>& torchscript_spec() {
  using O = TorchScriptOptions;
  static const config::OptionsSpec<O> spec(
      {config::required_key(SHRINK_OPTION(O, file, config::string(),
                                          "a module saved by torch.jit.script or torch.jit.trace; relative to the "
                                          "recipe's folder. It is code: declaring it is the consent to load it")),
       config::no_default(SHRINK_OPTION(O, sha256, config::string(),
                                        "filled in when the recipe is loaded; a file that changed since is refused"))});
  return spec;
}

void allow_torchscript(bool allowed) { g_allowed = allowed; }
bool torchscript_allowed() { return g_allowed; }

TorchScriptModelImpl::TorchScriptModelImpl(torch::jit::Module module)
    : torch::nn::Module("TorchScriptModel"), module_(std::make_shared<torch::jit::Module>(std::move(module))) {
  std::ostringstream original;
  module_->save(original);
  original_ = original.str();
  fuse_relu_max_pool(*module_);
  mirror_tree(*this, *module_);
}

at::Tensor TorchScriptModelImpl::forward(const at::Tensor& x) {
  // Each op runs as LibTorch's eager op (the optimizer's fused autodiff graphs trained slower);
  // the guard restores the process's setting for the caller's own TorchScript modules.
  const torch::jit::GraphOptimizerEnabledGuard eager(false);
  const auto out = module_->forward({x});
  if (!out.isTensor()) {
    throw core::Error(cat("the TorchScript module's forward returned ", out.tagKind(),
                          "; shrink needs it to return the logits as one tensor"));
  }
  return out.toTensor();
}

void TorchScriptModelImpl::train(bool on) {
  torch::nn::Module::train(on);
  module_->train(on);
}

// The module's own tensors move through TorchScript's to(), which sets the data of the shared
// tensors; what shrink registered beside them (pruning masks) moves through the mirror's.
void TorchScriptModelImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  module_->to(device, dtype, non_blocking);
  torch::nn::Module::to(device, dtype, non_blocking);
}
void TorchScriptModelImpl::to(torch::Dtype dtype, bool non_blocking) {
  module_->to(dtype, non_blocking);
  torch::nn::Module::to(dtype, non_blocking);
}
void TorchScriptModelImpl::to(torch::Device device, bool non_blocking) {
  module_->to(device, non_blocking);
  torch::nn::Module::to(device, non_blocking);
}

Model from_torchscript(const std::filesystem::path& file) {
  if (!torchscript_allowed()) {
    throw core::UsageError(cat(file.string(),
                               ": the model is TorchScript, which is code; shrink loads it only for a recipe that "
                               "declares `arch: torchscript` or a command given --torchscript"));
  }
  core::require_regular_file(file);
  torch::jit::Module module;
  try {
    module = torch::jit::load(file.string(), c10::Device(c10::kCPU));
  } catch (const c10::Error& e) {
    throw core::UsageError(cat(file.string(), ": not a TorchScript file torch::jit::load reads: ",
                               std::string(e.what_without_backtrace()).substr(0, 300)));
  }
  return to_model(TorchScriptModel(std::move(module)));
}

TorchScriptModelImpl* as_torchscript(const Model& model) {
  return dynamic_cast<TorchScriptModelImpl*>(model.module.get());
}

bool is_torchscript(const torch::nn::Module& module) {
  return dynamic_cast<const TorchScriptModelImpl*>(&module) != nullptr;
}

void TorchScriptModelImpl::save(const std::filesystem::path& file) const {
  // The module as brought (its code without shrink's fused ops, which PyTorch would not know),
  // given the current values of its parameters and buffers.
  std::istringstream in(original_);
  auto out = torch::jit::load(in, c10::Device(c10::kCPU));
  {
    torch::NoGradGuard no_grad;
    std::map<std::string, at::Tensor> now;
    for (const auto& p : module_->named_parameters()) now[p.name] = p.value;
    for (const auto& b : module_->named_buffers()) now[b.name] = b.value;
    for (const auto& p : out.named_parameters()) p.value.copy_(now.at(p.name));
    for (const auto& b : out.named_buffers()) b.value.copy_(now.at(b.name));
  }
  core::write_atomically(file, [&](const std::filesystem::path& temp) { out.save(temp.string()); });
}

void save_torchscript(TorchScriptModelImpl& model, const std::filesystem::path& file) { model.save(file); }

SHRINK_ON_LOAD(torchscript_architecture) {
  Architecture a;
  a.name = kTorchScriptArch;
  a.options = torchscript_spec().schema();
  a.build = [](const YAML::Node& options, const ModelInput& input) {
    const auto o = torchscript_spec().parse(options);
    if (!o.sha256().empty() && torchscript_allowed() && std::filesystem::exists(o.file())) {
      const auto now = file_sha256(o.file());
      if (now != o.sha256()) {
        throw core::UsageError(cat(o.file(), ": the TorchScript file changed since the model was declared (sha256 ",
                                   now.substr(0, 12), ", recorded ", o.sha256().substr(0, 12), ")"));
      }
    }
    auto model = from_torchscript(o.file());
    // A probe batch in eval mode: the module must map the data's samples to one logit per class.
    const auto shape = batch_shape(2, input.shape);
    model.module->eval();
    at::Tensor out;
    {
      torch::NoGradGuard no_grad;
      try {
        out = model.forward(torch::zeros(shape));
      } catch (const std::exception& e) {
        throw core::UsageError(cat(o.file(), ": the TorchScript module does not run on the data's samples (",
                                   at::IntArrayRef(input.shape), "): ", std::string(e.what()).substr(0, 300)));
      }
    }
    if (out.dim() != 2 || out.size(0) != 2 || out.size(1) != input.num_classes) {
      throw core::UsageError(cat(o.file(), ": the TorchScript module returns ", out.sizes(), " for 2 samples; ",
                                 "expected [2, ", input.num_classes, "] (one logit per class)"));
    }
    model.module->train();
    return model;
  };
  a.resolve = [](YAML::Node& options, const std::filesystem::path& base) {
    std::filesystem::path file = options["file"].as<std::string>();
    if (file.is_relative()) file = (base / file).lexically_normal();
    options["file"] = file.string();
    core::require_regular_file(file);
    if (!options["sha256"]) options["sha256"] = file_sha256(file);
    // The recipe declares it: that is the consent to load this code.
    allow_torchscript(true);
  };
  ArchitectureRegistry::instance().add(std::move(a));
}

}  // namespace shrink::models
