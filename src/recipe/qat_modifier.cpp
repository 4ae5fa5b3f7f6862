// QAT modifier: recipe body → QatOptions → a QatModifier attached to the stage's model.
#include "recipe/qat_modifier.h"

#include "compress/quantize/qat.h"
#include "core/error.h"
#include "recipe/quantize_stage.h"

namespace shrink::recipe {

namespace qz = compress::quantize;
using core::cat;

namespace {

class QatPlan : public ModifierPlan {
 public:
  explicit QatPlan(qz::QatOptions options) : options_(std::move(options)) { qz::validate(options_); }

  void check_epochs(int64_t epochs, const std::string& run) const override {
    const auto e = static_cast<double>(epochs);
    if (options_.start_epoch() >= e) {
      throw core::UsageError(cat("start_epoch (", options_.start_epoch(), ") must fall inside the ", run));
    }
    for (const auto& [key, value] : {std::pair<const char*, double>{"end_epoch", options_.end_epoch()},
                                     {"freeze_observers_epoch", options_.freeze_observers_epoch()},
                                     {"freeze_bn_epoch", options_.freeze_bn_epoch()}}) {
      if (value > e) throw core::UsageError(cat(key, " (", value, ") is past the ", run));
    }
  }

  void check(torch::nn::Module& model) const override {
    if (qz::find_groups(model).empty()) throw core::UsageError("qat: the model has no Conv2d or Linear layer to quantize");
  }

  std::shared_ptr<train::Modifier> attach(ModelSlot& slot, StageContext&) const override {
    return std::make_shared<qz::QatModifier>(slot.model, options_);
  }

  bool converts_to_int8() const override { return true; }

 private:
  qz::QatOptions options_;
};

}  // namespace

ModifierKind qat_modifier_kind() {
  const auto epoch = number(0);
  const auto schema = map_of({
      documented(with_default("backend", one_of({"auto", "onednn", "qnnpack"}), std::string("auto")),
                 "int8 engine; auto: onednn on x86, else qnnpack"),
      documented(optional("weights", observer_schema()), "default: moving_average, per-channel symmetric qint8 on onednn"),
      documented(optional("activations", observer_schema()), "default: moving_average quint8"),
      documented(with_default("start_epoch", epoch, 0.0), "fake quantization from this epoch on"),
      documented(with_default("end_epoch", number(-1), -1.0), "observers stop here (fake quantization goes on); -1: end"),
      documented(with_default("freeze_observers_epoch", number(-1), -1.0), "-1: never"),
      documented(with_default("freeze_bn_epoch", number(-1), -1.0), "BatchNorm uses running statistics from here; -1: never"),
      documented(with_default("learnable_scales", boolean(), false), "LSQ: activation scales trained once observers freeze"),
      documented(with_default_node("exclude", list_of(string()), YAML::Node(YAML::NodeType::Sequence)),
                 "regexes of layer paths kept float"),
  });
  return {"qat", schema, [](const YAML::Node& n) -> std::unique_ptr<ModifierPlan> {
            qz::QatOptions o;
            o.backend(n["backend"].as<std::string>());
            const auto b = qz::resolve_backend(o.backend());
            if (n["weights"]) o.weights(parse_observer(n["weights"], qz::default_qat_weight_observer(b)));
            if (n["activations"]) o.activations(parse_observer(n["activations"], qz::default_qat_activation_observer(b)));
            o.start_epoch(n["start_epoch"].as<double>());
            o.end_epoch(n["end_epoch"].as<double>());
            o.freeze_observers_epoch(n["freeze_observers_epoch"].as<double>());
            o.freeze_bn_epoch(n["freeze_bn_epoch"].as<double>());
            o.learnable_scales(n["learnable_scales"].as<bool>());
            o.exclude(n["exclude"].as<std::vector<std::string>>());
            return std::make_unique<QatPlan>(o);
          }};
}

}  // namespace shrink::recipe
