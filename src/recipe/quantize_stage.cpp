// Quantize stage: recipe body → QuantizeOptions → PostTrainingQuantizer (prepare, calibrate on the
// training split, convert); the int8 structure is recorded in the model's blueprint.
#include "recipe/quantize_stage.h"

#include "compress/quantize/quantizer.h"
#include "compress/quantize/torchscript_int8.h"
#include "core/error.h"
#include "core/log.h"
#include "core/pattern.h"
#include "models/torchscript.h"

namespace shrink::recipe {

namespace qz = compress::quantize;
using core::cat;

namespace {

// A quantize stage's options: PTQ's, and how much training data calibrates it.
struct QuantizeStageOptions {
  TORCH_ARG(qz::QuantizeOptions, quantize) = {};
  TORCH_ARG(int64_t, calibration_batches) = 32;
  TORCH_ARG(int64_t, batch_size) = 128;
};

const OptionsSpec<QuantizeStageOptions>& quantize_stage_spec() {
  using O = QuantizeStageOptions;
  static const OptionsSpec<O> spec([] {
    auto lifted = flatten<O>(
        qz::quantize_spec(), [](const O& o) { return o.quantize(); },
        [](O& o, qz::QuantizeOptions q) { o.quantize(std::move(q)); });
    std::vector<Binding<O>> b;
    for (auto& k : lifted) {
      if (k.key == "method") {
        // A recipe names the PTQ methods apart from QAT (a modifier).
        b.push_back(bind_enum<O>(
            "method",
            core::EnumNames<qz::QuantizeMethod>{{qz::QuantizeMethod::kStatic, "ptq_static"},
                                                {qz::QuantizeMethod::kDynamic, "ptq_dynamic"}},
            [](const O& o) { return o.quantize().method(); },
            [](O& o, qz::QuantizeMethod m) { o.quantize(qz::QuantizeOptions(o.quantize()).method(m)); },
            "ptq_static: int8 activations calibrated; ptq_dynamic: int8 Linear weights, activations per batch"));
      } else {
        b.push_back(std::move(k));
      }
      if (b.back().key == "backend") {
        b.push_back(SHRINK_OPTION(O, calibration_batches, integer(1, 100000), "static: training batches observed"));
        b.push_back(SHRINK_OPTION(O, batch_size, integer(1, 65536), "calibration batch size"));
      }
    }
    return b;
  }());
  return spec;
}

}  // namespace

namespace {

class QuantizeStage : public Stage {
 public:
  QuantizeStage(std::string model, const QuantizeStageOptions& options)
      : model_(std::move(model)),
        options_(options.quantize()),
        batches_(options.calibration_batches()),
        batch_size_(options.batch_size()) {
    qz::validate(options_);
  }

  const std::string& model() const override { return model_; }

  void check(torch::nn::Module& model) const override {
    size_t groups = 0;
    const bool dynamic = options_.method() == qz::QuantizeMethod::kDynamic;
    if (auto* scripted = dynamic_cast<models::TorchScriptModelImpl*>(&model)) {
      if (!dynamic) throw core::UsageError(cat("model '", model_, "' is TorchScript: ", models::kTorchScriptSupports));
      const auto plan = qz::plan_torchscript_dynamic(*scripted, core::compile_patterns(options_.exclude(), "exclude"));
      if (plan.convert.empty()) {
        std::string kept;
        for (const auto& k : plan.keep) kept += cat("; ", k.layer, ": ", k.reason);
        throw core::UsageError(cat("model '", model_, "' is TorchScript and its forward has no aten::linear call ",
                                   "dynamic int8 can convert", kept, " (", models::kTorchScriptSupports, ")"));
      }
      return;
    }
    for (const auto& g : qz::find_groups(model)) groups += !dynamic || g.kind == qz::GroupKind::kLinear;
    if (groups == 0) {
      throw core::UsageError(cat("model '", model_, "' has no layer ", core::name_of(options_.method()),
                                 " quantization can convert", dynamic ? " (dynamic covers Linear layers)" : ""));
    }
  }

  bool ends_in_int8() const override { return true; }

  StageBatches batches() const override { return {0, batch_size_, {}}; }

  StageOutcome run(StageContext& ctx) override {
    auto& slot = ctx.models->at(model_);
    if (ctx.device.type() != c10::kCPU) {
      core::log_info(cat("[", ctx.index, "] int8 kernels run on the CPU: ", model_, " moves there from ", ctx.device));
    }
    slot.model.module->to(at::kCPU);
    slot.model.module->eval();
    qz::PostTrainingQuantizer quantizer(slot.model, options_);
    quantizer.prepare();
    int64_t calibrated = 0;
    if (options_.method() == qz::QuantizeMethod::kStatic) {
      const auto& train = ctx.data->train;
      calibrated = std::min(train.size(), batches_ * batch_size_);
      core::log_info(cat("[", ctx.index, "] quantize ", model_, ": calibrating on ", calibrated, " training samples (",
                         batches_, " batches of ", batch_size_, ")"));
      quantizer.calibrate(train.to(at::kCPU), batches_, batch_size_);
    }
    slot.blueprint.transforms.push_back(quantizer.convert(slot.model));
    auto summary = std::make_shared<qz::QuantizationSummary>(quantizer.summary());
    if (options_.method() == qz::QuantizeMethod::kStatic) summary->calibration_samples = calibrated;
    StageOutcome out;
    out.sections.push_back(summary);
    return out;
  }

 private:
  std::string model_;
  qz::QuantizeOptions options_;
  int64_t batches_;
  int64_t batch_size_;
};

}  // namespace

StageKind quantize_stage_kind() {
  return StageKind{"quantize", quantize_stage_spec().schema({}, {required("model", reference("models"))}),
                   [](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     return std::make_unique<QuantizeStage>(n["model"].as<std::string>(),
                                                            quantize_stage_spec().parse(n));
                   }};
}

}  // namespace shrink::recipe
