// Autocast scopes and dynamic loss scaling for the Trainer.
#include "train/precision.h"

#include <ATen/ATen.h>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/torch_compat.h"

namespace shrink::train {

using core::cat;

void check_precision(const c10::Device& device, Precision precision) {
  if (precision == Precision::kFp32) return;
  if (precision == Precision::kFp16 && !device.is_cuda()) {
    throw core::UsageError(cat("precision fp16 needs a CUDA device, got ", device.str(), "; use bf16 on the CPU"));
  }
  if (!device.is_cpu() && !device.is_cuda()) throw core::UsageError(cat("no autocast for device ", device.str()));
  // oneDNN's bf16 kernels (LibTorch's CPU autocast) start at AVX-512 F/BW/VL; below it the first
  // convolution fails with "could not create a primitive descriptor iterator".
  if (precision == Precision::kBf16 && device.is_cpu() && !core::cpu_has_avx512()) {
    throw core::UsageError(cat("precision bf16 on the CPU needs AVX-512 (oneDNN's bf16 kernels); this CPU path has ",
                               core::cpu_paths(), ": use fp32 here, or bf16 on a CUDA device"));
  }
}

AutocastScope::AutocastScope(const c10::Device& device, Precision precision) {
  check_precision(device, precision);
  if (precision == Precision::kFp32) return;
  device_type_ = device.type();
  was_enabled_ = compat::autocast_enabled(device_type_);
  was_dtype_ = compat::autocast_dtype(device_type_);
  compat::set_autocast(device_type_, true, precision == Precision::kBf16 ? at::kBFloat16 : at::kHalf);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The cache of casted weights lives as long as the outermost scope, as in torch.autocast.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::set_autocast(device_type_, was_enabled_, was_dtype_);
}

LossScaler::LossScaler(double initial_scale, int64_t growth_interval)
    : scale_(initial_scale), growth_interval_(growth_interval) {
  SHRINK_CHECK(initial_scale > 0, "initial loss scale must be > 0, got ", initial_scale);
  SHRINK_CHECK(growth_interval >= 1, "growth_interval must be >= 1, got ", growth_interval);
}

at::Tensor LossScaler::scale(const at::Tensor& loss) const { return loss * scale_; }

bool LossScaler::unscale(const std::vector<at::Tensor>& params) const {
  std::vector<at::Tensor> finite;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    p.grad().detach().mul_(1.0 / scale_);
    finite.push_back(p.grad().isfinite().all());
  }
  return finite.empty() || at::stack(finite).all().item<bool>();
}

void LossScaler::update(bool finite) {
  if (!finite) {
    scale_ *= 0.5;
    finite_steps_ = 0;
    return;
  }
  if (++finite_steps_ >= growth_interval_) {
    scale_ *= 2.0;
    finite_steps_ = 0;
  }
}

void LossScaler::restore(double scale, int64_t finite_steps) {
  SHRINK_CHECK(scale > 0 && finite_steps >= 0, "bad loss scaler state: scale ", scale, ", finite steps ", finite_steps);
  scale_ = scale;
  finite_steps_ = finite_steps;
}

}  // namespace shrink::train
