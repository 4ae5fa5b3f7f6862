// The residual connection of a block, `relu?(a + b)`, as a layer quantizers can reach: observed
// during calibration, fake-quantized in QAT, and an int8 add once converted (LibTorch's
// `quantized::add(_relu)` or shrink's own, runtime/int8_add.h).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>

#include "runtime/int8_kernels.h"
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
  // Whose int8 add runs (kAuto: shrink's where it has a vector path or LibTorch lacks
  // quantized::add, else LibTorch's).
  runtime::Int8Kernels kernels() const { return kernels_; }
  void set_kernels(runtime::Int8Kernels k) { kernels_ = k; }

 private:
  at::Tensor own_add(const at::Tensor& a, const at::Tensor& b) const;

  bool relu_;
  runtime::Int8Kernels kernels_ = runtime::Int8Kernels::kAuto;
  OutputFn hook_;
  at::Tensor scale_, zero_point_;
  double out_scale_ = 1.0;
  int64_t out_zero_point_ = 0;
  std::pair<int64_t, int64_t> seen_versions_{-1, -1};
};

TORCH_MODULE(ResidualAdd);

}  // namespace shrink::models
