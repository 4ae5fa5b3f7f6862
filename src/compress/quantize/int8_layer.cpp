// Int8 layer storage shared by the quantized Linear and Conv2d.
#include "compress/quantize/int8_layer.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "runtime/quantize_row.h"

namespace shrink::compress::quantize {

Int8LayerImpl::Int8LayerImpl(std::vector<int64_t> weight_shape, bool per_channel, Activations activations, bool relu)
    : per_channel_(per_channel), activations_(activations), relu_(relu) {
  SHRINK_CHECK(weight_shape.size() >= 2, "int8 weights need rank >= 2, got shape of rank ", weight_shape.size());
  const int64_t channels = per_channel ? weight_shape[0] : 1;
  weight_ = register_buffer("weight", at::zeros(weight_shape, at::kChar));
  weight_scale_ = register_buffer("weight_scale", at::ones({channels}, at::kFloat));
  weight_zero_point_ = register_buffer("weight_zero_point", at::zeros({channels}, at::kLong));
  bias_ = register_buffer("bias", at::zeros({weight_shape[0]}, at::kFloat));
  if (activations == Activations::kStatic) {
    input_scale_ = register_buffer("input_scale", at::ones({1}, at::kFloat));
    input_zero_point_ = register_buffer("input_zero_point", at::zeros({1}, at::kLong));
    scale_ = register_buffer("scale", at::ones({1}, at::kFloat));
    zero_point_ = register_buffer("zero_point", at::zeros({1}, at::kLong));
  }
}

void Int8LayerImpl::set_weight(const at::Tensor& weight, const at::Tensor& bias, const QParams& q) {
  at::NoGradGuard no_grad;
  SHRINK_CHECK(weight.sizes() == weight_.sizes(), "weight of shape ", weight.sizes(), " for an int8 layer of shape ",
               weight_.sizes());
  SHRINK_CHECK(q.dtype == QDtype::kQInt8, "int8 layers store qint8 weights, got ", core::name_of(q.dtype));
  SHRINK_CHECK(q.per_channel() == per_channel_ && (!q.per_channel() || q.axis == 0), "weight quantization must be ",
               per_channel_ ? "per output channel (axis 0)" : "per tensor");
  weight_scale_.copy_(q.scale.reshape(weight_scale_.sizes()));
  weight_zero_point_.copy_(q.zero_point.reshape(weight_zero_point_.sizes()));
  // Clamped to the range the weights were observed in (7 bits with reduce_range), as fake
  // quantization clamped them in training: the full qint8 range kept values QAT never saw.
  auto clamp_as_observed = weight_qparams();
  clamp_as_observed.range = q.range;
  weight_.copy_(quantize_to_int(weight.detach().cpu(), clamp_as_observed));
  if (bias.defined()) {
    bias_.copy_(bias.detach().cpu().reshape(bias_.sizes()));
  } else {
    bias_.zero_();
  }
}

void Int8LayerImpl::set_input(const QParams& q) {
  SHRINK_CHECK(activations_ == Activations::kStatic, "a dynamic int8 layer has no input quantization");
  SHRINK_CHECK(!q.per_channel(), "activations are quantized per tensor");
  input_scale_.copy_(q.scale.reshape({1}));
  input_zero_point_.copy_(q.zero_point.reshape({1}));
}

void Int8LayerImpl::set_output(const QParams& q) {
  SHRINK_CHECK(activations_ == Activations::kStatic, "a dynamic int8 layer has no output quantization");
  SHRINK_CHECK(!q.per_channel(), "activations are quantized per tensor");
  scale_.copy_(q.scale.reshape({1}));
  zero_point_.copy_(q.zero_point.reshape({1}));
}

QParams Int8LayerImpl::weight_qparams() const {
  QParams q;
  q.scale = weight_scale_;
  q.zero_point = weight_zero_point_;
  q.axis = per_channel_ ? 0 : -1;
  q.dtype = QDtype::kQInt8;
  q.range = quant_range(QDtype::kQInt8, false);
  return q;
}

namespace {

QParams activation_qparams(const at::Tensor& scale, const at::Tensor& zero_point) {
  QParams q;
  q.scale = scale;
  q.zero_point = zero_point;
  q.dtype = QDtype::kQUInt8;
  q.range = quant_range(QDtype::kQUInt8, false);
  return q;
}

}  // namespace

QParams Int8LayerImpl::input_qparams() const {
  SHRINK_CHECK(activations_ == Activations::kStatic, "a dynamic int8 layer has no input quantization");
  return activation_qparams(input_scale_, input_zero_point_);
}

QParams Int8LayerImpl::output_qparams() const {
  SHRINK_CHECK(activations_ == Activations::kStatic, "a dynamic int8 layer has no output quantization");
  return activation_qparams(scale_, zero_point_);
}

at::Tensor Int8LayerImpl::quantized_weight() const { return from_int(weight_, weight_qparams()); }

at::Tensor Int8LayerImpl::dequantized_weight() const { return quantized_weight().dequantize(); }

std::vector<int64_t> Int8LayerImpl::versions() const {
  std::vector<int64_t> v = {static_cast<int64_t>(weight_._version()), static_cast<int64_t>(weight_scale_._version()),
                            static_cast<int64_t>(weight_zero_point_._version()),
                            static_cast<int64_t>(bias_._version())};
  if (activations_ == Activations::kStatic) {
    for (const auto* t : {&input_scale_, &input_zero_point_, &scale_, &zero_point_}) {
      v.push_back(static_cast<int64_t>(t->_version()));
    }
  }
  return v;
}

bool Int8LayerImpl::stale() {
  auto now = versions();
  if (now == packed_versions_ && packed_backend_ == backend_) return false;
  packed_versions_ = std::move(now);
  packed_backend_ = backend_;
  if (activations_ == Activations::kStatic) {
    in_scale_ = input_scale_.item<float>();
    in_zero_point_ = input_zero_point_.item<int64_t>();
    out_scale_ = scale_.item<float>();
    out_zero_point_ = zero_point_.item<int64_t>();
  }
  return true;
}

at::Tensor Int8LayerImpl::quantized_input(const at::Tensor& x, at::MemoryFormat format) {
  if (x.is_quantized()) return x;
  if (!x.device().is_cpu()) return at::quantize_per_tensor(x.to(at::kFloat), in_scale_, in_zero_point_, at::kQUInt8);
  const auto values = x.to(at::kFloat).contiguous(format);
  auto q = at::_empty_affine_quantized(values.sizes(), at::TensorOptions().dtype(at::kQUInt8), in_scale_,
                                       in_zero_point_, format);
  runtime::quantize_row(values.data_ptr<float>(), values.numel(), static_cast<float>(in_scale_),
                        static_cast<int32_t>(in_zero_point_), reinterpret_cast<uint8_t*>(q.data_ptr()));
  return q;
}

}  // namespace shrink::compress::quantize
