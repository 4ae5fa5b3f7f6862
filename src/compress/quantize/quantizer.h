// Post-training quantization of any module built from LayerStacks (shrink's zoo, or a user's own):
// find fusable groups (Conv2d/Linear [+ BatchNorm] [+ ReLU]), observe them on calibration data
// (static) and convert them to int8 layers. The same structure is re-applied to a freshly built
// model when an int8 file is restored (models/restore.h, transform kind "int8").
#pragma once

#include <nlohmann/json.hpp>
#include <torch/arg.h>
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compress/quantize/backend.h"
#include "compress/quantize/observer.h"
#include "compress/quantize/quantization_summary.h"
#include "config/options_spec.h"
#include "core/enum_names.h"
#include "data/dataset.h"
#include "models/blueprint.h"
#include "models/model.h"

namespace shrink::compress::quantize {

// The transform kind int8 models record in their blueprint.
inline constexpr const char* kInt8Transform = "int8";

// static: int8 activations, scales from calibration; dynamic: int8 Linear weights, activations
// quantized per batch at run time (no calibration).
enum class QuantizeMethod { kStatic, kDynamic };
inline const core::EnumNames<QuantizeMethod>& enum_names(QuantizeMethod) {
  static const core::EnumNames<QuantizeMethod> names{{QuantizeMethod::kStatic, "static"},
                                                     {QuantizeMethod::kDynamic, "dynamic"}};
  return names;
}

struct QuantizeOptions {
  TORCH_ARG(QuantizeMethod, method) = QuantizeMethod::kStatic;
  TORCH_ARG(BackendChoice, backend) = BackendChoice::kAuto;
  // Observers; unset = the engine's defaults (backend.h).
  TORCH_ARG(c10::optional<ObserverOptions>, weights) = c10::nullopt;
  TORCH_ARG(c10::optional<ObserverOptions>, activations) = c10::nullopt;
  // Regexes searched in layer paths (features.0, classifier.4): matching groups stay float.
  TORCH_ARG(std::vector<std::string>, exclude) = {};
};

// The keys of QuantizeOptions.
const config::OptionsSpec<QuantizeOptions>& quantize_spec();
// Throws a UsageError naming what is wrong (backend, observers the engine cannot take).
void validate(const QuantizeOptions& options);
// A binding of an observer overlaid on the engine's default (`weights:` / `activations:` keys of
// PTQ and QAT): absent, the option stays unset and the default applies.
template <class O, class Get, class Set, class Default>
config::Binding<O> observer_binding(std::string key, Get get, Set set, Default engine_default, std::string doc) {
  return config::Binding<O>{key,
                            observer_spec().overlay_schema(),
                            [get](const O& o) {
                              const auto& v = get(o);
                              return v ? observer_spec().emit(*v) : YAML::Node();
                            },
                            [set, engine_default](O& o, const YAML::Node& n) {
                              set(o, observer_spec().parse(n, engine_default(resolve_backend(o.backend()))));
                            },
                            false,
                            true,
                            {},
                            std::move(doc)};
}

enum class GroupKind { kLinear, kConv2d };
inline const core::EnumNames<GroupKind>& enum_names(GroupKind) {
  static const core::EnumNames<GroupKind> names{{GroupKind::kLinear, "linear"}, {GroupKind::kConv2d, "conv2d"}};
  return names;
}

// One fusable group: layers [first, first + count) of the LayerStack at `stack`.
struct LayerGroup {
  std::string stack;  // module path of the LayerStack ("" for the root)
  int64_t first = 0;
  int64_t count = 1;
  GroupKind kind = GroupKind::kLinear;
  bool batch_norm = false;
  bool relu = false;
  std::string path() const;  // path of the group's first layer
};

// Every Conv2d/Linear group in `module`'s LayerStacks, in module order.
std::vector<LayerGroup> find_groups(torch::nn::Module& module);

class PostTrainingQuantizer {
 public:
  // `model` is changed in place by prepare() and convert().
  PostTrainingQuantizer(models::Model model, QuantizeOptions options);

  // static: observers on every group's input and output and on every residual add; the model
  // still computes in float. (dynamic: nothing to do.)
  void prepare();
  // Runs the model in eval mode on the first `batches` batches of `data` (static only).
  void calibrate(const data::Dataset& data, int64_t batches, int64_t batch_size = 128);
  // Folds BatchNorm into the weights, quantizes them and swaps the groups for int8 layers.
  // Returns the transform to record in the model's blueprint; `model` now runs int8 kernels
  // (outputs dequantized to float).
  models::Transform convert(models::Model& model);

  // Method, backend, observers, int8 layers, layers kept float and why (after convert()).
  const QuantizationSummary& summary() const { return summary_; }
  Backend backend() const { return backend_; }

 private:
  struct Observed;
  models::Model model_;
  QuantizeOptions options_;
  Backend backend_;
  ObserverOptions weights_, activations_;
  std::vector<LayerGroup> groups_;
  std::vector<std::shared_ptr<Observed>> observed_;
  std::vector<std::pair<std::string, std::shared_ptr<ObserverImpl>>> add_observers_;
  bool prepared_ = false;
  QuantizationSummary summary_;
};

// BatchNorm (eval statistics) folded into the group's Conv2d/Linear weight and bias.
std::pair<at::Tensor, at::Tensor> fold_batch_norm(torch::nn::Module& module, const LayerGroup& group);

// What one group becomes: folded float weight and bias, the weight's quantization, and (static)
// the input and output activations'.
struct GroupQuantization {
  LayerGroup group;
  at::Tensor weight, bias;
  QParams weight_q;
  QParams input, output;
};
struct AddQuantization {
  std::string path;
  QParams output;
};

// Swaps the groups for int8 layers holding these values (PTQ and QAT both end here). Returns the
// transform to record; fills `summary`'s int8_layers and float_layers (and warns of the latter).
models::Transform convert_to_int8(models::Model& model, Backend backend, QuantizeMethod method, bool per_channel,
                                  const std::vector<GroupQuantization>& groups,
                                  const std::vector<AddQuantization>& adds, QuantizationSummary& summary);

// Every module of `module` still holding float parameters, with `reason(path)` for each, as the
// summary lists them; warns naming them.
std::vector<FloatLayer> layers_kept_float(const torch::nn::Module& module,
                                          const std::function<std::string(const std::string& layer)>& reason);
// int8 kernels are CPU kernels: `model.forward` takes its input there and hands float logits back
// on the input's device.
void run_on_cpu(models::Model& model);

// Re-applies a recorded int8 structure to a freshly built float model (the "int8" transform):
// int8 layers in place of the groups, with their buffers ready for load_state_dict.
void apply_int8_structure(models::Model& model, const nlohmann::json& settings);

// Checks every int8 layer's stored quantization after a load: scales positive and finite, zero
// points inside their dtype's range. Throws an Error naming `source` and the tensor (a corrupt
// file would otherwise run and give garbage).
void check_int8_state(const torch::nn::Module& module, const std::string& source);

// Number of int8 weights in a module (the report counts them as parameters).
int64_t int8_weight_count(const torch::nn::Module& module);

}  // namespace shrink::compress::quantize
