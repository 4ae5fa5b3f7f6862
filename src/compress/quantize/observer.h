// Observers: record the range of the values a tensor takes (weights once, activations over
// calibration batches or training steps) and turn it into quantization parameters. Same
// algorithms and defaults as torch.ao.quantization's, state kept in buffers so it checkpoints.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>

#include "config/options_spec.h"
#include "core/enum_names.h"
#include "runtime/qparams.h"

namespace shrink::compress::quantize {

// The quantization arithmetic lives with the kernels (runtime/qparams.h); quantizers speak it.
using runtime::calculate_qparams;
using runtime::dequantize_reference;
using runtime::from_int;
using runtime::QDtype;
using runtime::QParams;
using runtime::QRange;
using runtime::quant_range;
using runtime::quantize_reference;
using runtime::quantize_to_int;
using runtime::to_quantized;

// How an observer turns what it saw into a range: running min/max, their moving average, a
// histogram's least-error range, or a central percentile of its mass.
enum class ObserverKind { kMinMax, kMovingAverage, kHistogram, kPercentile };
inline const core::EnumNames<ObserverKind>& enum_names(ObserverKind) {
  static const core::EnumNames<ObserverKind> names{{ObserverKind::kMinMax, "minmax"},
                                                   {ObserverKind::kMovingAverage, "moving_average"},
                                                   {ObserverKind::kHistogram, "histogram"},
                                                   {ObserverKind::kPercentile, "percentile"}};
  return names;
}

struct ObserverOptions {
  TORCH_ARG(ObserverKind, kind) = ObserverKind::kMinMax;
  TORCH_ARG(QDtype, dtype) = QDtype::kQUInt8;
  TORCH_ARG(bool, symmetric) = false;
  TORCH_ARG(bool, per_channel) = false;
  TORCH_ARG(int64_t, ch_axis) = 0;
  TORCH_ARG(bool, reduce_range) = false;
  // moving_average: min ← min + c (batch_min − min), PyTorch's default c.
  TORCH_ARG(double, averaging_constant) = 0.01;
  // histogram and percentile: bins of the running histogram (PyTorch's HistogramObserver: 2048).
  TORCH_ARG(int64_t, bins) = 2048;
  // percentile: the clipping range keeps this central share of the observed mass, in percent.
  TORCH_ARG(double, percentile) = 99.99;
};

// The recipe keys of an observer (`weights:`, `activations:`). A recipe's keys overlay the
// engine's default observer, so the schema gives no defaults of its own (overlay_schema()).
const config::OptionsSpec<ObserverOptions>& observer_spec();
// Throws a UsageError naming the bad value (per-channel histograms...).
void validate(const ObserverOptions& options);
// `histogram` or `percentile`: the kinds that keep a histogram (PTQ only).
bool keeps_histogram(ObserverKind kind);

class ObserverImpl : public torch::nn::Module {
 public:
  explicit ObserverImpl(ObserverOptions options) : options_(std::move(options)) {}
  // Records `x` (detached); returns it unchanged so an observer can sit in a forward pass.
  virtual at::Tensor forward(const at::Tensor& x) = 0;
  virtual QParams qparams() const = 0;
  // True once it has seen at least one non-empty tensor.
  virtual bool observed() const = 0;
  const ObserverOptions& options() const { return options_; }

 protected:
  ObserverOptions options_;
};

// Running min/max (PyTorch's MinMaxObserver, MovingAverageMinMaxObserver and their per-channel
// forms). `channels` sizes the per-channel buffers up front so a checkpoint of them loads into a
// fresh observer; 0 leaves them to the first observation.
class MinMaxObserverImpl : public ObserverImpl {
 public:
  MinMaxObserverImpl(ObserverOptions options, int64_t channels = 0);
  at::Tensor forward(const at::Tensor& x) override;
  QParams qparams() const override;
  bool observed() const override;
  const at::Tensor& min_val() const { return min_val_; }
  const at::Tensor& max_val() const { return max_val_; }

 private:
  at::Tensor min_val_, max_val_;
};

// A histogram of everything observed (PyTorch's HistogramObserver: bins re-laid when the range
// grows), then the clipping range: `histogram` picks the one with the least L2 quantization error
// (PyTorch's non-linear search), `percentile` the central `percentile` % of the mass.
class HistogramObserverImpl : public ObserverImpl {
 public:
  explicit HistogramObserverImpl(ObserverOptions options);
  at::Tensor forward(const at::Tensor& x) override;
  QParams qparams() const override;
  bool observed() const override;
  // The clipping range the qparams come from.
  std::pair<float, float> clipping_range() const;

 private:
  double quantization_error(int64_t start_bin, int64_t end_bin) const;
  std::pair<float, float> l2_search() const;
  std::pair<float, float> percentile_range() const;

  at::Tensor histogram_, min_val_, max_val_;
  int64_t upsample_rate_ = 128;
};

std::shared_ptr<ObserverImpl> make_observer(const ObserverOptions& options, int64_t channels = 0);

}  // namespace shrink::compress::quantize
