// Quantization-aware training as a modifier: every Conv2d/Linear group (with its BatchNorm folded
// the way PyTorch's QAT ConvBn does) trains through fake-quantized weights and activations, as do
// residual adds. Observers run, then freeze at a set epoch; BatchNorm statistics freeze at another.
// finish() converts the trained model to int8 with the parameters it trained with.
#pragma once

#include <torch/arg.h>

#include <memory>
#include <vector>

#include "compress/quantize/fake_quantize.h"
#include "compress/quantize/qat_summary.h"
#include "compress/quantize/quantizer.h"
#include "train/modifier.h"
#include "train/modifier_kind.h"

namespace shrink::compress::quantize {

struct QatOptions {
  TORCH_ARG(BackendChoice, backend) = BackendChoice::kAuto;
  // Unset: PyTorch's QAT defaults for the engine (moving-average min/max observers; weights
  // per-channel symmetric qint8 on onednn, per-tensor on qnnpack; activations quint8).
  TORCH_ARG(c10::optional<ObserverOptions>, weights) = c10::nullopt;
  TORCH_ARG(c10::optional<ObserverOptions>, activations) = c10::nullopt;
  TORCH_ARG(double, start_epoch) = 0.0;
  TORCH_ARG(double, end_epoch) = -1.0;               // < 0: to the end of training
  TORCH_ARG(double, freeze_observers_epoch) = -1.0;  // < 0: never
  TORCH_ARG(double, freeze_bn_epoch) = -1.0;         // < 0: never
  TORCH_ARG(bool, learnable_scales) = false;         // LSQ activation scales (per tensor)
  TORCH_ARG(std::vector<std::string>, exclude) = {};
};

// The recipe keys of a qat modifier.
const config::OptionsSpec<QatOptions>& qat_spec();
void validate(const QatOptions& options);
ObserverOptions default_qat_weight_observer(Backend b);
ObserverOptions default_qat_activation_observer(Backend b);

// Recipes name it `qat` (train/modifier_kind.h).
class QatModifier : public train::Modifier {
 public:
  QatModifier(models::Model model, QatOptions options);

  using Options = QatOptions;
  static const config::OptionsSpec<QatOptions>& spec() { return qat_spec(); }
  static std::shared_ptr<QatModifier> attach(const QatOptions& options, train::ModifierContext& ctx) {
    return std::make_shared<QatModifier>(ctx.model, options);
  }
  // Its epochs must fall inside the run's.
  static void check_epochs(const QatOptions& options, int64_t epochs, const std::string& run);
  // The model must have a Conv2d or Linear layer to quantize.
  static void check(const QatOptions& options, torch::nn::Module& model);
  static constexpr bool kConvertsToInt8 = true;

  // Converts to int8 with the trained quantization parameters (call after training; the recipe
  // runner does). The model then runs int8 kernels; transforms() includes the int8 structure.
  void finish(models::Model& model) override;
  bool finished() const { return converted_.has_value(); }

  // Modifier
  std::string name() const override { return "qat"; }
  train::Window window() const override { return {options_.start_epoch(), options_.end_epoch()}; }
  std::string fingerprint() const override;
  void prepare(torch::nn::Module& module) override;
  std::vector<at::Tensor> extra_parameters() override;
  std::vector<std::pair<std::string, at::Tensor>> state_tensors() const override;
  void on_step_begin(train::Trainer& trainer, const train::StepInfo& step) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  std::vector<models::Transform> transforms() const override;
  std::shared_ptr<const train::ModifierSummary> summary() const override;

  // Where the schedule stands (for tests and your own loop: call update(epoch) before each step).
  void update(double epoch);
  bool observers_frozen() const { return observers_frozen_; }
  bool bn_frozen() const { return bn_frozen_; }

 private:
  struct Group;
  at::Tensor run_group(Group& g, const at::Tensor& x);

  models::Model model_;
  QatOptions options_;
  Backend backend_;
  ObserverOptions weights_, activations_;
  std::vector<std::shared_ptr<Group>> groups_;
  std::vector<std::pair<std::string, FakeQuantize>> adds_;
  bool prepared_ = false;
  bool active_ = false;
  bool observing_ = true;
  bool observers_frozen_ = false;
  bool bn_frozen_ = false;
  c10::optional<models::Transform> converted_;
  QuantizationSummary converted_summary_;
};

}  // namespace shrink::compress::quantize
