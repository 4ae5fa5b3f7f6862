// TorchScript models as shrink models: a module saved by torch.jit.script or torch.jit.trace,
// trained, pruned, distilled and exported through the same Model the zoo builds.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <memory>
#include <string>

#include "config/options_spec.h"
#include "models/model.h"

namespace torch::jit {
struct Module;
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
  void save(const std::filesystem::path& file) const;

 private:
  std::shared_ptr<torch::jit::Module> module_;  // held by pointer: <torch/script.h> stays out of this header
  std::string original_;                        // the module as brought, serialised
};
TORCH_MODULE(TorchScriptModel);

// The TorchScript module in `file` as a model (needs allow_torchscript). Throws a UsageError naming
// the file when it is not TorchScript or when TorchScript is not allowed.
Model from_torchscript(const std::filesystem::path& file);

// What a TorchScript model supports, for the errors of the stages it does not.
inline constexpr const char* kTorchScriptSupports =
    "a TorchScript model is trained, pruned, distilled (from its logits), evaluated and benchmarked; int8 "
    "conversion needs layers held in LayerStacks (a zoo architecture, or one registered in C++)";

// The TorchScript model inside `model`, or nullptr for any other model.
TorchScriptModelImpl* as_torchscript(const Model& model);
bool is_torchscript(const torch::nn::Module& module);

// Writes the module with its current weights as a TorchScript file (torch.jit.load and
// torch::jit::load run it), atomically.
void save_torchscript(TorchScriptModelImpl& model, const std::filesystem::path& file);

}  // namespace shrink::models
