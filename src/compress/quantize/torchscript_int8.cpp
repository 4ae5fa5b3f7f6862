// Dynamic int8 of TorchScript Linear layers: the plan, the conversion, and its transform.
#include "compress/quantize/torchscript_int8.h"

#include <map>

#include "compress/quantize/quantized_linear.h"
#include "compress/quantize/quantizer.h"
#include "core/error.h"
#include "core/log.h"
#include "core/registration.h"
#include "models/restore.h"

namespace shrink::compress::quantize {

using core::cat;
using nlohmann::json;

namespace {

models::TorchScriptModelImpl& scripted(models::Model& model) {
  auto* ts = models::as_torchscript(model);
  SHRINK_CHECK(ts, "torchscript_int8: the model is not a TorchScript model");
  return *ts;
}

}  // namespace

ScriptedLinearPlan plan_torchscript_dynamic(const models::TorchScriptModelImpl& model,
                                            const std::vector<core::Pattern>& exclude) {
  ScriptedLinearPlan plan;
  for (auto& layer : model.linear_layers()) {
    if (!layer.unsupported.empty()) {
      plan.keep.push_back({layer.path, layer.unsupported});
    } else if (core::search_any(exclude, layer.path)) {
      plan.keep.push_back({layer.path, "excluded by the recipe (exclude)"});
    } else {
      plan.convert.push_back(std::move(layer));
    }
  }
  return plan;
}

void apply_torchscript_int8(models::Model& model, const json& settings) {
  auto& ts = scripted(model);
  const auto backend = backend_from_name(settings.at("backend").get<std::string>());
  SHRINK_CHECK(core::enum_from_name<QuantizeMethod>(settings.at("method").get<std::string>(),
                                                    "torchscript_int8 method") == QuantizeMethod::kDynamic,
               "torchscript_int8: TorchScript Linear layers are quantized dynamically only");
  const bool per_channel = settings.at("per_channel").get<bool>();
  // The reduce_range each call passes quantized::linear_dynamic, fixed in the graph before the
  // weights arrive: 7-bit activations where the sums may saturate, unless the weights took 7 bits
  // (files from before the key: PyTorch's 8-bit weights).
  const bool reduce_range = int8_sums_may_saturate(backend) && !settings.value("weights_reduce_range", false);
  use_backend(backend);
  std::map<std::string, models::ScriptedLinear> linears;
  for (const auto& l : ts.linear_layers()) linears[l.path] = l;
  for (const auto& p : settings.at("layers")) {
    const auto path = p.get<std::string>();
    const auto it = linears.find(path);
    SHRINK_CHECK(it != linears.end(), "torchscript_int8: the TorchScript forward calls no aten::linear on '", path,
                 ".weight'");
    auto layer = QuantizedLinear(it->second.in_features, it->second.out_features, per_channel, Activations::kDynamic,
                                 /*relu=*/false);
    layer->set_backend(backend);
    auto holder = layer.ptr();
    ts.run_linear_dynamic(
        path, holder, [holder](const at::Tensor& x) { return holder->forward(x); },
        [holder] { return holder->packed(); }, reduce_range);
  }
  run_on_cpu(model);
}

models::Transform convert_torchscript_dynamic(models::Model& model, Backend backend, const ObserverOptions& weights,
                                              const std::vector<core::Pattern>& exclude, QuantizationSummary& summary) {
  auto& ts = scripted(model);
  const auto plan = plan_torchscript_dynamic(ts, exclude);
  // The float weights, read before the int8 layers take their place.
  std::map<std::string, at::Tensor> params;
  for (const auto& p : model.module->named_parameters()) params[p.key()] = p.value().detach().clone();
  json layers = json::array();
  for (const auto& l : plan.convert) layers.push_back(l.path);
  const json settings = {{"method", core::name_of(QuantizeMethod::kDynamic)},
                         {"backend", core::name_of(backend)},
                         {"per_channel", weights.per_channel()},
                         {"weights_reduce_range", weights.reduce_range()},
                         {"layers", layers}};
  apply_torchscript_int8(model, settings);

  std::map<std::string, std::shared_ptr<QuantizedLinearImpl>> int8;
  for (const auto& m : model.module->named_modules()) {
    if (auto q = std::dynamic_pointer_cast<QuantizedLinearImpl>(m.value())) int8[m.key()] = q;
  }
  for (const auto& l : plan.convert) {
    const auto weight = params.at(l.path + ".weight");
    const auto bias = params.count(l.path + ".bias") ? params.at(l.path + ".bias") : at::zeros({l.out_features});
    auto wo = weights;
    wo.ch_axis(0);
    auto observer = make_observer(wo, l.out_features);
    observer->forward(weight);
    int8.at(l.path)->set_weight(weight, bias, observer->qparams());
    summary.int8_layers.push_back(l.path);
  }
  summary.kernels = engine_name(backend);
  std::map<std::string, std::string> reasons;
  for (const auto& k : plan.keep) reasons[k.layer] = k.reason;
  summary.float_layers = layers_kept_float(*model.module, [&](const std::string& layer) {
    const auto it = reasons.find(layer);
    return it != reasons.end() ? it->second : "dynamic int8 covers the forward's aten::linear calls only";
  });
  return models::Transform{kTorchScriptInt8Transform, settings};
}

// TorchScript int8 files rebuild their int8 layers before the weights load, and their stored
// quantization is checked after, as the zoo's int8 files are.
SHRINK_ON_LOAD(torchscript_int8_transform) {
  models::TransformKind kind;
  kind.apply = apply_torchscript_int8;
  kind.check_loaded = check_int8_state;
  kind.cpu_only = true;
  kind.final = true;
  models::register_transform(kTorchScriptInt8Transform, kind);
}

}  // namespace shrink::compress::quantize
