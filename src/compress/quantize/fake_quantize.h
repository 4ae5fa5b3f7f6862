// Fake quantization for quantization-aware training: the forward pass rounds to the int8 grid and
// back (ATen's fake_quantize ops), the backward pass is the straight-through estimator. An
// observer tracks the range while enabled; with `learnable`, the scale is a trained parameter
// (LSQ, Esser et al. 2020) once the observer is frozen.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "compress/quantize/observer.h"

namespace shrink::compress::quantize {

class FakeQuantizeImpl : public torch::nn::Module {
 public:
  // `channels` sizes per-channel state up front (weights); 0 for per-tensor.
  FakeQuantizeImpl(ObserverOptions observer, int64_t channels = 0, bool learnable = false);
  at::Tensor forward(const at::Tensor& input);

  // The observer runs only while enabled (the QAT modifier enables it in training steps only).
  void enable_observer(bool on) { observe_ = on; }
  void enable_fake_quant(bool on) { fake_quant_ = on; }
  bool observer_enabled() const { return observe_; }
  // The parameters the forward pass quantizes with (what conversion to int8 uses).
  QParams qparams() const;
  // The learnable scale (LSQ), undefined otherwise.
  at::Tensor learnable_scale() const { return learnable_ ? scale_ : at::Tensor(); }
  bool observed() const { return observer_->observed(); }

 private:
  ObserverOptions options_;
  std::shared_ptr<ObserverImpl> observer_;
  bool learnable_;
  bool observe_ = true;
  bool fake_quant_ = true;
  // Once the observer holds a range it keeps one (min/max only widen, averages stay between seen
  // values), so forward asks it once instead of reading it back every step.
  bool known_observed_ = false;
  at::Tensor scale_, zero_point_;
  QRange range_;
};

TORCH_MODULE(FakeQuantize);

}  // namespace shrink::compress::quantize
