// Residual add in float, observed, and int8 (quantized::add / add_relu through the dispatcher).
#include "models/residual_add.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "core/error.h"

namespace shrink::models {

void ResidualAddImpl::to_int8() {
  if (is_int8()) return;
  scale_ = register_buffer("scale", at::ones({1}, at::kFloat));
  zero_point_ = register_buffer("zero_point", at::zeros({1}, at::kLong));
  hook_ = nullptr;
}

void ResidualAddImpl::set_output(const runtime::QParams& q) {
  SHRINK_CHECK(is_int8(), "set_output on a float residual add");
  scale_.copy_(q.scale.reshape({1}));
  zero_point_.copy_(q.zero_point.reshape({1}));
}

at::Tensor ResidualAddImpl::forward(const at::Tensor& a, const at::Tensor& b) {
  if (!is_int8()) {
    auto y = a + b;
    if (relu_) y = at::relu(y);
    return hook_ ? hook_(y) : y;
  }
  const std::pair<int64_t, int64_t> versions(scale_._version(), zero_point_._version());
  if (versions != seen_versions_) {
    out_scale_ = scale_.item<float>();
    out_zero_point_ = zero_point_.item<int64_t>();
    seen_versions_ = versions;
  }
  if (a.is_quantized() && b.is_quantized()) {
    using AddFn = at::Tensor(at::Tensor, at::Tensor, double, int64_t);
    static const auto add = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::add", "").typed<AddFn>();
    static const auto add_relu =
        c10::Dispatcher::singleton().findSchemaOrThrow("quantized::add_relu", "").typed<AddFn>();
    return (relu_ ? add_relu : add).call(a, b, out_scale_, out_zero_point_);
  }
  // One side float (a layer with no int8 kernel): add in float, hand on an int8 result.
  auto y = (a.is_quantized() ? a.dequantize() : a) + (b.is_quantized() ? b.dequantize() : b);
  if (relu_) y = at::relu(y);
  return at::quantize_per_tensor(y, out_scale_, out_zero_point_, at::kQUInt8);
}

}  // namespace shrink::models
