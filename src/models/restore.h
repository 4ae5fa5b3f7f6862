// The one way shrink loads a model from a file: rebuild what the file's blueprint describes
// (architecture, options, transforms in order), then load the weights into it strictly.
#pragma once

#include <c10/core/Device.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "io/state_dict.h"
#include "models/blueprint.h"
#include "models/model.h"

namespace shrink::models {

// Re-applies one recorded structural change to a freshly built model, before weights are loaded.
using TransformFn = std::function<void(Model& model, const nlohmann::json& settings)>;

// A kind of structural change, registered by the compressor that makes it (pruning: `prune_masks`;
// quantization: `int8`): restore names none of them.
struct TransformKind {
  TransformFn apply;
  // After the weights are loaded: throws an Error naming `source` when they cannot be right
  // (an int8 scale that is not positive). Optional.
  std::function<void(const torch::nn::Module& module, const std::string& source)> check_loaded;
  // For a file without a description, loaded into a blueprint given from outside: the transform
  // its entries imply (`<param>_mask` entries: pruning masks), or nullopt. Optional.
  std::function<std::optional<Transform>(const io::StateDict& entries)> implied_by;
  // The kernels of a model with this transform run on the CPU only (int8).
  bool cpu_only = false;
  // A model with this transform can no longer be trained or quantized (int8).
  bool final = false;
};

// Registers a transform kind (a UsageError when the kind is taken); compressors do it as the
// program loads (core/registration.h).
void register_transform(const std::string& kind, TransformKind transform);
// The registered kinds, sorted.
std::vector<std::string> transform_kinds();

// The first transform of `blueprint` after which the model cannot be trained, or nullptr.
const Transform* final_transform(const Blueprint& blueprint);

// Where a model of `blueprint` runs when `asked` is wanted: the CPU if a transform's kernels run
// only there, else `asked`.
c10::Device run_device(const Blueprint& blueprint, const c10::Device& asked);

// The blueprint's architecture with its transforms applied; weights random until loaded.
Model build(const Blueprint& blueprint);

struct Restored {
  Model model;
  Blueprint blueprint;
};

// Rebuilds the model `file` (.pt, .pth or .h5) describes and loads its weights: ready to run, in
// eval mode, on the CPU. A file without a description (a .pth from PyTorch, or one copied without
// its .json) needs `fallback`, as for restore_model_as.
Restored restore_model(const std::filesystem::path& file, const Blueprint* fallback = nullptr);
// The same for a file already read with io::read_stored_file (its description looked at first).
Restored restore_model(const io::StoredFile& stored, const std::filesystem::path& file,
                       const Blueprint* fallback = nullptr);
// Loads `file` into `blueprint`'s model instead of the one the file describes, with the transforms
// its entries imply (`<param>_mask` entries beside a parameter: pruning masks).
Restored restore_model_as(const std::filesystem::path& file, const Blueprint& blueprint);

// A declared model (a recipe's `models.NAME`) started from the weights in `file` (`init:`):
// shrink's own file must describe the same architecture, options and input, and brings its
// transforms (pruning masks, int8 layers); a file without a description (PyTorch's
// `torch.save(model.state_dict())`) is loaded into the declared model. `prefix` is stripped from
// every entry name first (DDP's "module."). Names and shapes must match exactly; a UsageError
// names the file and lists every missing, unexpected and mis-shaped tensor.
Restored initialize_from(const std::filesystem::path& file, const Blueprint& declared, const std::string& prefix = "");

}  // namespace shrink::models
