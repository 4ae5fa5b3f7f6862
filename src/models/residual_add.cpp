// Residual add in float, observed, and int8 (quantized::add / add_relu through the dispatcher, or
// shrink's own).
#include "models/residual_add.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "core/error.h"
#include "runtime/int8_add.h"
#include "runtime/quantize_row.h"

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
  const auto per_tensor_quint8 = [](const at::Tensor& t) {
    return t.is_quantized() && t.scalar_type() == at::kQUInt8 && t.qscheme() == at::kPerTensorAffine;
  };
  if (a.is_quantized() && b.is_quantized()) {
    using runtime::Int8Kernels;
    static const bool has_add = runtime::libtorch_has_op("quantized::add");
    // Auto: shrink's wherever it has a vector path (1.5x LibTorch's at one and at 64 images on
    // AVX-512, docs/quantization.md) or LibTorch lacks the op.
    const bool vector_path = runtime::best_vector_path() != runtime::VectorPath::kReference;
    const bool own = kernels_ == Int8Kernels::kShrink || (kernels_ == Int8Kernels::kAuto && (!has_add || vector_path));
    if (own && per_tensor_quint8(a) && per_tensor_quint8(b)) return own_add(a, b);
    if (!own) {
      if (!has_add) runtime::throw_missing_op("int8 residual add", "quantized::add");
      using AddFn = at::Tensor(at::Tensor, at::Tensor, double, int64_t);
      static const auto add = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::add", "").typed<AddFn>();
      static const auto add_relu =
          c10::Dispatcher::singleton().findSchemaOrThrow("quantized::add_relu", "").typed<AddFn>();
      return (relu_ ? add_relu : add).call(a, b, out_scale_, out_zero_point_);
    }
  }
  // One side float (a layer with no int8 kernel), or a quantization shrink's add does not take: add
  // in float, hand on an int8 result.
  auto y = (a.is_quantized() ? a.dequantize() : a) + (b.is_quantized() ? b.dequantize() : b);
  if (relu_) y = at::relu(y);
  return at::quantize_per_tensor(y, out_scale_, out_zero_point_, at::kQUInt8);
}

at::Tensor ResidualAddImpl::own_add(const at::Tensor& a, const at::Tensor& b) const {
  SHRINK_CHECK(a.sizes() == b.sizes(), "int8 residual add: shrink's add takes two tensors of one shape, got ",
               a.sizes(), " and ", b.sizes());
  // Both sides in one memory order (a convolution's channels-last, as a rule), the output in it too.
  const auto format = a.suggest_memory_format();
  const auto x = a.contiguous(format), y = b.contiguous(format);
  runtime::Int8AddParams p;
  p.a_scale = static_cast<float>(x.q_scale());
  p.a_zero_point = static_cast<int32_t>(x.q_zero_point());
  p.b_scale = static_cast<float>(y.q_scale());
  p.b_zero_point = static_cast<int32_t>(y.q_zero_point());
  p.out_scale = static_cast<float>(out_scale_);
  p.out_zero_point = static_cast<int32_t>(out_zero_point_);
  p.relu = relu_;
  auto out = at::_empty_affine_quantized(x.sizes(), at::TensorOptions().dtype(at::kQUInt8), out_scale_, out_zero_point_,
                                         format);
  runtime::int8_add(reinterpret_cast<const uint8_t*>(x.data_ptr()), reinterpret_cast<const uint8_t*>(y.data_ptr()),
                    x.numel(), p, reinterpret_cast<uint8_t*>(out.data_ptr()));
  return out;
}

}  // namespace shrink::models
