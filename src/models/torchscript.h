// TorchScript models as shrink models: a module saved by torch.jit.script or torch.jit.trace,
// trained, pruned, distilled and exported through the same Model the zoo builds.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/options_spec.h"
#include "models/model.h"

namespace torch::jit {
struct Module;
struct GraphFunction;
}  // namespace torch::jit

namespace shrink::models {

// `arch: torchscript` in a recipe: the file, and its SHA-256 as recorded when the recipe was loaded
// (a later build refuses a file that changed).
struct TorchScriptOptions {
  TORCH_ARG(std::string, file);
  TORCH_ARG(std::string, sha256) = "";
};
// The architecture name recipes give TorchScript models (`arch: torchscript`).
inline constexpr const char* kTorchScriptArch = "torchscript";

const config::OptionsSpec<TorchScriptOptions>& torchscript_spec();

// A Linear layer of a TorchScript forward: an aten::linear call on one submodule's own `weight`
// (and `bias`), which dynamic int8 can replace.
struct ScriptedLinear {
  std::string path;  // the submodule holding the weight ("head.0")
  int64_t in_features = 0;
  int64_t out_features = 0;
  std::string unsupported;  // why it cannot run as int8, or "" when it can
};

// A TorchScript file is code. shrink loads one only after this was turned on for the process: by a
// recipe that declares a TorchScript model, or by a command's --torchscript flag.
void allow_torchscript(bool allowed);
bool torchscript_allowed();

// A scripted or traced module seen as a torch::nn::Module: its parameters and buffers are the
// TorchScript module's own tensors (shared, under the same dotted names), so optimizers, pruning
// masks, state_dicts and devices act on what the TorchScript forward runs.
class TorchScriptModelImpl : public torch::nn::Module {
 public:
  explicit TorchScriptModelImpl(torch::jit::Module module);

  at::Tensor forward(const at::Tensor& x);
  void train(bool on = true) override;
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;

  // The module shrink runs, holding the current weights (its forward may call shrink's fused ops).
  torch::jit::Module& scripted() { return *module_; }
  // Writes the module as brought, with the current weights, as a TorchScript file, atomically.
  // With int8 Linear layers it is frozen (torch.jit.freeze): its forward holds the packed int8
  // weights as PyTorch's own graph-mode quantization leaves them, and it has no state_dict.
  void save(const std::filesystem::path& file) const;

  // The aten::linear calls of the forward shrink runs, one per submodule whose weight they take,
  // in graph order (layers already made int8 are not among them).
  std::vector<ScriptedLinear> linear_layers() const;
  // From now on the Linear at `path` (one of linear_layers(), supported) runs as `run` (shrink's
  // int8 layer, through the op shrink::int8_linear) in the forward shrink runs, and as
  // quantized::linear_dynamic on the packed weights `packed` returns (asked at each save) in the
  // saved file, its activations 7-bit there when `reduce_range` (as `run` quantizes them). `state`
  // takes the submodule's place among this module's children: its tensors are the layer's in
  // state_dicts.
  void run_linear_dynamic(const std::string& path, std::shared_ptr<torch::nn::Module> state,
                          std::function<at::Tensor(const at::Tensor&)> run, std::function<c10::IValue()> packed,
                          bool reduce_range);
  // The forward graph shrink runs, as text (tests and errors).
  std::string graph_text() const;

 private:
  struct Int8Linear {
    std::string path, attribute;
    std::function<c10::IValue()> packed;
    bool reduce_range = false;
  };

  std::shared_ptr<torch::jit::Module> module_;  // held by pointer: <torch/script.h> stays out of this header
  std::string original_;                        // the module as brought, serialised
  // The forward with int8 Linear calls, run in place of the module's own once there are any.
  std::shared_ptr<torch::jit::GraphFunction> int8_forward_;
  std::vector<Int8Linear> int8_;
};
TORCH_MODULE(TorchScriptModel);

// The TorchScript module in `file` as a model (needs allow_torchscript). Throws a UsageError naming
// the file when it is not TorchScript or when TorchScript is not allowed.
Model from_torchscript(const std::filesystem::path& file);

// What a TorchScript model supports, for the errors of the stages it does not.
inline constexpr const char* kTorchScriptSupports =
    "a TorchScript model is trained, pruned, distilled (from its logits), evaluated, benchmarked and quantized "
    "dynamically (ptq_dynamic: int8 weights for the Linear layers its forward calls as aten::linear); static int8 "
    "and QAT need layers held in LayerStacks (a zoo architecture, or one registered in C++)";

// The TorchScript model inside `model`, or nullptr for any other model.
TorchScriptModelImpl* as_torchscript(const Model& model);
bool is_torchscript(const torch::nn::Module& module);

// Writes the module with its current weights as a TorchScript file (torch.jit.load and
// torch::jit::load run it), atomically.
void save_torchscript(TorchScriptModelImpl& model, const std::filesystem::path& file);

}  // namespace shrink::models
