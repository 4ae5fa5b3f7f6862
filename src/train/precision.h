// Mixed-precision training: the dtype autocast computes in, and fp16's dynamic loss scaling.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>
#include <vector>

#include "core/enum_names.h"

namespace shrink::train {

enum class Precision { kFp32, kBf16, kFp16 };
inline const core::EnumNames<Precision>& enum_names(Precision) {
  static const core::EnumNames<Precision> names{
      {Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}, {Precision::kFp16, "fp16"}};
  return names;
}

// Throws a UsageError unless `device` can train in `precision` (fp16 needs CUDA).
void check_precision(const c10::Device& device, Precision precision);

// Inside its scope, ops autocast lists (matmuls, convolutions) run in bf16 or fp16 on `device`
// and precision-sensitive ones (softmax, losses) in fp32, as torch.autocast does; fp32 changes
// nothing. fp16 needs CUDA: LibTorch's CPU autocast computes in bf16 only.
class AutocastScope {
 public:
  AutocastScope(const c10::Device& device, Precision precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

// Dynamic loss scaling with torch.cuda.amp.GradScaler's rule: multiply the loss by the scale
// before backward; before the step, divide the gradients back and skip the step when any is
// inf or NaN, halving the scale; double it after `growth_interval` finite steps in a row.
class LossScaler {
 public:
  explicit LossScaler(double initial_scale = 65536.0, int64_t growth_interval = 2000);

  at::Tensor scale(const at::Tensor& loss) const;
  // Unscales the gradients of `params` in place and says whether all are finite. Reads one flag
  // back to the host, as GradScaler's step does.
  bool unscale(const std::vector<at::Tensor>& params) const;
  void update(bool finite);

  double current_scale() const { return scale_; }
  int64_t finite_steps() const { return finite_steps_; }
  // Restores a checkpointed state.
  void restore(double scale, int64_t finite_steps);

 private:
  double scale_;
  int64_t growth_interval_;
  int64_t finite_steps_ = 0;
};

}  // namespace shrink::train
