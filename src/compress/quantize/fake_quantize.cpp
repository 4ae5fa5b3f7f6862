// Fake quantization on ATen's fake_quantize_per_{tensor,channel}_affine (and the learnable
// per-tensor variant), with the observer's parameters copied in while it runs.
#include "compress/quantize/fake_quantize.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"

namespace shrink::compress::quantize {

FakeQuantizeImpl::FakeQuantizeImpl(ObserverOptions observer, int64_t channels, bool learnable)
    : options_(std::move(observer)), learnable_(learnable) {
  SHRINK_CHECK(!(learnable && options_.per_channel()), "learnable (LSQ) scales are per tensor");
  observer_ = register_module("observer", make_observer(options_, channels));
  range_ = quant_range(options_.dtype(), options_.reduce_range());
  const int64_t n = options_.per_channel() ? std::max<int64_t>(channels, 1) : 1;
  if (learnable) {
    scale_ = register_parameter("scale", at::ones({n}, at::kFloat));
  } else {
    scale_ = register_buffer("scale", at::ones({n}, at::kFloat));
  }
  zero_point_ = register_buffer("zero_point", at::zeros({n}, at::kInt));
}

QParams FakeQuantizeImpl::qparams() const {
  QParams q;
  q.scale = scale_.detach().clone().to(at::kFloat).abs();
  q.zero_point = zero_point_.to(at::kLong);
  q.axis = options_.per_channel() ? options_.ch_axis() : -1;
  q.dtype = options_.dtype();
  q.range = range_;
  return q;
}

at::Tensor FakeQuantizeImpl::forward(const at::Tensor& input) {
  // Under bf16 or fp16 autocast a layer's output arrives in reduced precision; ATen fake-quantizes
  // fp32 only, and the int8 model will see fp32 activations anyway.
  const at::Tensor x = input.scalar_type() == at::kFloat ? input : input.to(at::kFloat);
  if (observe_) {
    observer_->forward(x.detach());
    const auto q = observer_->qparams();
    at::NoGradGuard no_grad;
    if (scale_.sizes() != q.scale.sizes()) {
      scale_.resize_(q.scale.sizes());
      zero_point_.resize_(q.zero_point.sizes());
    }
    scale_.copy_(q.scale);
    zero_point_.copy_(q.zero_point);
  }
  if (!fake_quant_) return x;
  if (!known_observed_) known_observed_ = observer_->observed();
  if (!known_observed_) return x;
  if (options_.per_channel()) {
    return at::fake_quantize_per_channel_affine(x, scale_, zero_point_, options_.ch_axis(), range_.min, range_.max);
  }
  if (learnable_) {
    // LSQ's gradient scale: 1 / sqrt(elements × qmax).
    const double grad_factor = 1.0 / std::sqrt(static_cast<double>(x.numel()) * static_cast<double>(range_.max));
    return at::_fake_quantize_learnable_per_tensor_affine(x, scale_, zero_point_.to(at::kFloat), range_.min, range_.max,
                                                          grad_factor);
  }
  return at::fake_quantize_per_tensor_affine(x, scale_, zero_point_, range_.min, range_.max);
}

}  // namespace shrink::compress::quantize
