// Quantize stage: recipe body → QuantizeOptions → PostTrainingQuantizer (prepare, calibrate on the
// training split, convert); the int8 structure is recorded in the model's blueprint.
#include "recipe/quantize_stage.h"

#include "compress/quantize/quantizer.h"
#include "core/error.h"
#include "core/log.h"

namespace shrink::recipe {

namespace qz = compress::quantize;
using core::cat;

SchemaPtr observer_schema() {
  return map_of({
      documented(optional("kind", one_of({"minmax", "moving_average", "histogram", "percentile"})),
                 "default: the engine's (weights minmax; activations histogram on onednn, minmax on qnnpack)"),
      documented(optional("dtype", one_of({"qint8", "quint8"})), "default: weights qint8, activations quint8"),
      documented(optional("symmetric", boolean()), "default: weights true, activations false"),
      documented(optional("per_channel", boolean()), "default: weights true on onednn, false on qnnpack"),
      optional("reduce_range", boolean()),
      documented(optional("averaging_constant", number(0, 1)), "moving_average; default 0.01"),
      documented(optional("bins", integer(16, 65536)), "histogram, percentile; default 2048"),
      documented(optional("percentile", number(50, 100)), "percentile: central share of the mass kept; default 99.99"),
  });
}

qz::ObserverOptions parse_observer(const YAML::Node& n, qz::ObserverOptions o) {
  if (!n || !n.IsMap()) return o;
  if (n["kind"]) o.kind(n["kind"].as<std::string>());
  if (n["dtype"]) o.dtype(qz::dtype_from_name(n["dtype"].as<std::string>()));
  if (n["symmetric"]) o.symmetric(n["symmetric"].as<bool>());
  if (n["per_channel"]) o.per_channel(n["per_channel"].as<bool>());
  if (n["reduce_range"]) o.reduce_range(n["reduce_range"].as<bool>());
  if (n["averaging_constant"]) o.averaging_constant(n["averaging_constant"].as<double>());
  if (n["bins"]) o.bins(n["bins"].as<int64_t>());
  if (n["percentile"]) o.percentile(n["percentile"].as<double>());
  return o;
}

namespace {

class QuantizeStage : public Stage {
 public:
  QuantizeStage(std::string model, qz::QuantizeOptions options, int64_t batches, int64_t batch_size)
      : model_(std::move(model)), options_(std::move(options)), batches_(batches), batch_size_(batch_size) {
    qz::validate(options_);
  }

  const std::string& model() const override { return model_; }

  void check(torch::nn::Module& model) const override {
    size_t groups = 0;
    for (const auto& g : qz::find_groups(model)) groups += options_.method() == "static" || g.kind == "linear";
    if (groups == 0) {
      throw core::UsageError(cat("model '", model_, "' has no layer ", options_.method(), " quantization can convert",
                                 options_.method() == "dynamic" ? " (dynamic covers Linear layers)" : ""));
    }
  }

  bool ends_in_int8() const override { return true; }

  nlohmann::json run(StageContext& ctx) override {
    auto& slot = ctx.models->at(model_);
    if (ctx.device.type() != c10::kCPU) {
      core::log_info(cat("[", ctx.index, "] int8 kernels run on the CPU: ", model_, " moves there from ", ctx.device));
    }
    slot.model.module->to(at::kCPU);
    slot.model.module->eval();
    qz::PostTrainingQuantizer quantizer(slot.model, options_);
    quantizer.prepare();
    int64_t calibrated = 0;
    if (options_.method() == "static") {
      const auto& train = ctx.data->train;
      calibrated = std::min(train.size(), batches_ * batch_size_);
      core::log_info(cat("[", ctx.index, "] quantize ", model_, ": calibrating on ", calibrated, " training samples (",
                         batches_, " batches of ", batch_size_, ")"));
      quantizer.calibrate(train.to(at::kCPU), batches_, batch_size_);
    }
    slot.blueprint.transforms.push_back(quantizer.convert(slot.model));
    auto summary = quantizer.summary();
    if (options_.method() == "static") summary["calibration_samples"] = calibrated;
    summary["device"] = "cpu";
    return {{"quantization", summary}};
  }

 private:
  std::string model_;
  qz::QuantizeOptions options_;
  int64_t batches_;
  int64_t batch_size_;
};

}  // namespace

StageKind quantize_stage_kind() {
  const auto schema = map_of({
      required("model", reference("models")),
      documented(with_default("method", one_of({"ptq_static", "ptq_dynamic"}), std::string("ptq_static")),
                 "ptq_static: int8 activations calibrated; ptq_dynamic: int8 Linear weights, activations per batch"),
      documented(with_default("backend", one_of({"auto", "onednn", "qnnpack"}), std::string("auto")),
                 "int8 engine; auto: onednn on x86, else qnnpack"),
      documented(with_default("calibration_batches", integer(1, 100000), int64_t{32}), "static: training batches observed"),
      documented(with_default("batch_size", integer(1, 65536), int64_t{128}), "calibration batch size"),
      documented(optional("weights", observer_schema()), "weight observer; absent keys: the engine's defaults"),
      documented(optional("activations", observer_schema()), "activation observer; absent keys: the engine's defaults"),
      documented(with_default_node("exclude", list_of(string()), YAML::Node(YAML::NodeType::Sequence)),
                 "regexes of layer paths kept float (features.0, classifier.4)"),
  });
  return StageKind{"quantize", schema, [](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     qz::QuantizeOptions o;
                     o.method(n["method"].as<std::string>() == "ptq_dynamic" ? "dynamic" : "static");
                     o.backend(n["backend"].as<std::string>());
                     const auto backend = qz::resolve_backend(o.backend());
                     if (n["weights"]) o.weights(parse_observer(n["weights"], qz::default_weight_observer(backend)));
                     if (n["activations"]) {
                       o.activations(parse_observer(n["activations"], qz::default_activation_observer(backend)));
                     }
                     o.exclude(n["exclude"].as<std::vector<std::string>>());
                     return std::make_unique<QuantizeStage>(n["model"].as<std::string>(), o,
                                                            n["calibration_batches"].as<int64_t>(),
                                                            n["batch_size"].as<int64_t>());
                   }};
}

}  // namespace shrink::recipe
