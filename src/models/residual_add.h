// The residual connection of a block, `relu?(a + b)`, as a layer quantizers can reach: observed
// during calibration, fake-quantized in QAT, and `quantized::add(_relu)` once converted.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>

#include "runtime/qparams.h"

namespace shrink::models {

class ResidualAddImpl : public torch::nn::Module {
 public:
  explicit ResidualAddImpl(bool relu = true) : relu_(relu) {}
  at::Tensor forward(const at::Tensor& a, const at::Tensor& b);

  bool relu() const { return relu_; }
  // Called with each float output (observers, fake quantization); returns what flows on.
  using OutputFn = std::function<at::Tensor(const at::Tensor&)>;
  void set_output_hook(OutputFn fn) { hook_ = std::move(fn); }
  bool has_output_hook() const { return static_cast<bool>(hook_); }
  // Becomes int8: registers `scale` and `zero_point` buffers (the output's quantization).
  void to_int8();
  void set_output(const runtime::QParams& q);
  bool is_int8() const { return scale_.defined(); }

 private:
  bool relu_;
  OutputFn hook_;
  at::Tensor scale_, zero_point_;
  double out_scale_ = 1.0;
  int64_t out_zero_point_ = 0;
  std::pair<int64_t, int64_t> seen_versions_{-1, -1};
};

TORCH_MODULE(ResidualAdd);

}  // namespace shrink::models
