// TorchScript models as shrink models, and their registration as `arch: torchscript`.
#include "models/torchscript.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/subgraph_matcher.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/subgraph_rewrite.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/custom_class.h>
#include <torch/library.h>
#include <torch/script.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
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

// The forward with every method and function it calls inlined, so that the layers' ops are its own.
void inline_calls(std::shared_ptr<torch::jit::Graph> graph) {
  // One Inline pass leaves the calls of the methods it inlined (a traced Sequential's children).
  const auto has_calls = [&] {
    for (const auto* node : graph->nodes()) {
      if (node->kind() == c10::prim::CallMethod || node->kind() == c10::prim::CallFunction) return true;
    }
    return false;
  };
  for (int depth = 0; depth < 64 && has_calls(); ++depth) torch::jit::Inline(*graph);
  torch::jit::ConstantPropagation(graph);
}

// relu then 2x2, stride-2 max pooling (the end of most conv blocks) becomes shrink's fused kernel
// in the graph shrink runs: one pass forward and one backward instead of four (runtime/relu_max_pool.h).
void fuse_relu_max_pool(torch::jit::Module& module) {
  auto graph = module.get_method("forward").graph();
  inline_calls(graph);
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

// Every node of `block` and of the blocks nested in it (if and loop bodies).
void for_each_node(torch::jit::Block* block, const std::function<void(torch::jit::Node*)>& visit) {
  for (auto* node : block->nodes()) {
    visit(node);
    for (auto* inner : node->blocks()) for_each_node(inner, visit);
  }
}

// The dotted path of the attribute `value` reads off the graph's `self` ("head.0.weight"), or ""
// when `value` is not such a read.
std::string attribute_path(const torch::jit::Value* value, const torch::jit::Value* self) {
  std::vector<std::string> names;
  while (value != self) {
    const auto* node = value->node();
    if (node->kind() != c10::prim::GetAttr) return "";
    names.push_back(node->s(c10::attr::name));
    value = node->input(0);
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += (path.empty() ? "" : ".") + *it;
  return path;
}

torch::jit::Module submodule(const torch::jit::Module& root, const std::string& path) {
  torch::jit::Module m = root;
  std::stringstream names(path);
  for (std::string name; std::getline(names, name, '.');) m = m.attr(name).toModule();
  return m;
}

// Each aten::linear call on `path`'s weight becomes what `call` inserts in its place, given the
// call's input and the graph self's attribute `attribute`.
using CallMaker = std::function<torch::jit::Value*(torch::jit::Graph&, torch::jit::Value* x, torch::jit::Value* attr)>;
void replace_linear_calls(const std::shared_ptr<torch::jit::Graph>& graph, const std::string& path,
                          const std::string& attribute, const CallMaker& call) {
  auto* self = graph->inputs().at(0);
  std::vector<torch::jit::Node*> calls;
  for_each_node(graph->block(), [&](torch::jit::Node* node) {
    if (node->kind() == c10::aten::linear && attribute_path(node->input(1), self) == path + ".weight") {
      calls.push_back(node);
    }
  });
  for (auto* linear : calls) {
    const torch::jit::WithInsertPoint here(linear);
    auto* y = call(*graph, linear->input(0), graph->insertGetAttr(self, attribute));
    linear->output()->replaceAllUsesWith(y);
    linear->destroy();
  }
  torch::jit::EliminateDeadCode(graph);
}

// For PyTorch: quantized::linear_dynamic on packed weights (float in and out, as PyTorch's own
// dynamic quantization leaves the graph), with the activations' range shrink's layer runs with.
CallMaker linear_dynamic_call(bool reduce_range) {
  return [reduce_range](torch::jit::Graph& graph, torch::jit::Value* x, torch::jit::Value* packed) {
    static const auto op = c10::Symbol::fromQualString("quantized::linear_dynamic");
    return graph.insert(op, {x, packed, reduce_range});
  };
}

// For shrink: its own int8 layer (on shrink's kernels wherever they have a vector path).
torch::jit::Value* shrink_int8_call(torch::jit::Graph& graph, torch::jit::Value* x, torch::jit::Value* layer) {
  static const auto op = c10::Symbol::fromQualString("shrink::int8_linear");
  return graph.insert(op, {layer, x});
}

// What a shrink::int8_linear node calls: the int8 layer that stands in for a Linear submodule.
struct Int8LinearCall : torch::CustomClassHolder {
  explicit Int8LinearCall(std::function<at::Tensor(const at::Tensor&)> run) : run(std::move(run)) {}
  std::function<at::Tensor(const at::Tensor&)> run;
};

at::Tensor int8_linear_op(const c10::intrusive_ptr<Int8LinearCall>& layer, const at::Tensor& x) {
  return layer->run(x);
}

std::shared_ptr<torch::jit::Graph> forward_graph(const torch::jit::Module& module,
                                                 const std::shared_ptr<torch::jit::GraphFunction>& replaced) {
  return replaced ? replaced->graph() : module.get_method("forward").graph();
}

}  // namespace

TORCH_LIBRARY(shrink, m) {
  m.def("relu_max_pool2x2(Tensor x) -> Tensor");
  m.class_<Int8LinearCall>("Int8LinearCall");
  m.def("int8_linear(__torch__.torch.classes.shrink.Int8LinearCall layer, Tensor x) -> Tensor", int8_linear_op);
}
TORCH_LIBRARY_IMPL(shrink, CompositeImplicitAutograd, m) { m.impl("relu_max_pool2x2", relu_max_pool_op); }

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
  c10::IValue out;
  if (int8_forward_) {
    torch::jit::Stack stack{module_->_ivalue(), x};
    int8_forward_->run(stack);
    out = std::move(stack.at(0));
  } else {
    out = module_->forward({x});
  }
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
  if (!int8_.empty()) {
    // The int8 forward, on packed weights PyTorch's quantized engine reads back (its pickling of
    // LinearPackedParamsBase), then frozen: the Linear layers' float weights drop out with it.
    auto graph = out.get_method("forward").graph();
    inline_calls(graph);
    for (const auto& layer : int8_) {
      const auto packed = layer.packed();
      out.register_attribute(layer.attribute, packed.type(), packed);
      replace_linear_calls(graph, layer.path, layer.attribute, linear_dynamic_call(layer.reduce_range));
    }
    out.eval();
    out = torch::jit::freeze_module(out);
  }
  core::write_atomically(file, [&](const std::filesystem::path& temp) { out.save(temp.string()); });
}

std::vector<ScriptedLinear> TorchScriptModelImpl::linear_layers() const {
  const auto graph = forward_graph(*module_, int8_forward_);
  const auto* self = graph->inputs().at(0);
  // Attributes read for anything but a linear call's weight or bias (an int8 layer has no float weight).
  std::set<std::string> read_elsewhere;
  for_each_node(graph->block(), [&](torch::jit::Node* node) {
    if (node->kind() != c10::prim::GetAttr) return;
    const auto path = attribute_path(node->output(), self);
    for (const auto& use : node->output()->uses()) {
      const bool linear = use.user->kind() == c10::aten::linear && (use.offset == 1 || use.offset == 2);
      if (!linear && use.user->kind() != c10::prim::GetAttr) read_elsewhere.insert(path);
    }
  });
  std::vector<ScriptedLinear> layers;
  std::set<std::string> seen;
  for_each_node(graph->block(), [&](torch::jit::Node* node) {
    if (node->kind() != c10::aten::linear) return;
    const auto weight = attribute_path(node->input(1), self);
    const auto dot = weight.rfind('.');
    // A weight that is not a submodule's attribute has no layer to name or to stand in for.
    if (dot == std::string::npos || weight.substr(dot + 1) != "weight") return;
    ScriptedLinear layer;
    layer.path = weight.substr(0, dot);
    if (!seen.insert(layer.path).second) return;
    const auto module = submodule(*module_, layer.path);
    const auto w = module.attr("weight").toTensor();
    layer.out_features = w.size(0);
    layer.in_features = w.dim() == 2 ? w.size(1) : 0;
    const auto* bias = node->input(2);
    const bool own_bias =
        bias->type()->kind() == c10::TypeKind::NoneType || attribute_path(bias, self) == layer.path + ".bias";
    size_t tensors = module.named_buffers(false).size() + module.named_children().size();
    for (const auto& p : module.named_parameters(false)) tensors += p.name == "weight" || p.name == "bias" ? 0 : 1;
    if (w.dim() != 2) {
      layer.unsupported = cat("its weight is ", w.dim(), "-D");
    } else if (!own_bias) {
      layer.unsupported = "the call's bias is not the submodule's own `bias`";
    } else if (read_elsewhere.count(weight) || read_elsewhere.count(layer.path + ".bias")) {
      layer.unsupported = "the forward reads its weight or bias outside aten::linear";
    } else if (tensors > 0) {
      layer.unsupported = "the submodule holds more than a weight and a bias";
    }
    layers.push_back(layer);
  });
  return layers;
}

void TorchScriptModelImpl::run_linear_dynamic(const std::string& path, std::shared_ptr<torch::nn::Module> state,
                                              std::function<at::Tensor(const at::Tensor&)> run,
                                              std::function<c10::IValue()> packed, bool reduce_range) {
  SHRINK_CHECK(state && run && packed,
               "run_linear_dynamic needs the layer's state, its forward and its packed weights");
  const auto layers = linear_layers();
  const auto it = std::find_if(layers.begin(), layers.end(), [&](const ScriptedLinear& l) { return l.path == path; });
  if (it == layers.end()) {
    throw core::Error(cat("the TorchScript forward calls no aten::linear on '", path, ".weight'"));
  }
  if (!it->unsupported.empty()) throw core::Error(cat("the Linear '", path, "' cannot run as int8: ", it->unsupported));
  Int8Linear layer{path, cat("_shrink_int8_", int8_.size()), std::move(packed), reduce_range};
  const c10::IValue call(c10::make_intrusive<Int8LinearCall>(std::move(run)));
  module_->register_attribute(layer.attribute, call.type(), call);
  auto graph = forward_graph(*module_, int8_forward_)->copy();
  replace_linear_calls(graph, path, layer.attribute, shrink_int8_call);
  int8_forward_ =
      std::make_shared<torch::jit::GraphFunction>(c10::QualifiedName("shrink.int8_forward"), graph, nullptr);
  // The layer's place among the children: its float weight leaves state_dicts and optimizers.
  torch::nn::Module* parent = this;
  std::string name;
  std::stringstream names(path);
  for (std::string next; std::getline(names, next, '.');) {
    if (!name.empty()) parent = parent->named_children()[name].get();
    name = next;
  }
  parent->unregister_module(name);
  parent->register_module(name, std::move(state));
  int8_.push_back(std::move(layer));
}

std::string TorchScriptModelImpl::graph_text() const { return forward_graph(*module_, int8_forward_)->toString(); }

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
