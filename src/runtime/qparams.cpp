// Quantization parameter arithmetic and the scalar reference quantizer.
#include "runtime/qparams.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/error.h"

namespace shrink::runtime {

using core::cat;

QRange quant_range(QDtype dtype, bool reduce_range) {
  if (dtype == QDtype::kQInt8) return reduce_range ? QRange{-64, 63} : QRange{-128, 127};
  return reduce_range ? QRange{0, 127} : QRange{0, 255};
}

QParams calculate_qparams(const at::Tensor& min_in, const at::Tensor& max_in, QDtype dtype, bool symmetric,
                          bool reduce_range, int64_t axis) {
  SHRINK_CHECK(min_in.sizes() == max_in.sizes(), "min and max differ in shape: ", min_in.sizes(), " vs ",
               max_in.sizes());
  QParams q;
  q.dtype = dtype;
  q.axis = axis;
  q.range = quant_range(dtype, reduce_range);
  // Tensor arithmetic on the observer's device, float32 throughout as PyTorch's: a QAT step reads
  // nothing back to the host.
  const auto min_val = min_in.detach().to(at::kFloat).reshape(-1);
  const auto max_val = max_in.detach().to(at::kFloat).reshape(-1);
  const auto options = min_val.options();
  if (min_val.numel() == 0) {
    q.scale = at::ones({1}, options);
    q.zero_point = at::zeros({1}, options.dtype(at::kLong));
    return q;
  }
  const float eps = std::numeric_limits<float>::epsilon();
  const auto qmin = q.range.min, qmax = q.range.max;
  const auto neg = at::clamp_max(min_val, 0.0), pos = at::clamp_min(max_val, 0.0);
  at::Tensor scale, zero_point;
  if (symmetric) {
    scale = at::clamp_min(at::maximum(-neg, pos) / (static_cast<float>(qmax - qmin) / 2.0f), eps);
    zero_point = at::full(scale.sizes(), dtype == QDtype::kQUInt8 ? 128 : 0, options.dtype(at::kLong));
  } else {
    scale = at::clamp_min((pos - neg) / static_cast<float>(qmax - qmin), eps);
    zero_point = (qmin - at::round(neg / scale)).to(at::kLong).clamp(qmin, qmax);
  }
  // An observer that saw nothing (min > max) gives PyTorch's defaults, scale 1 and zero point 0.
  const auto unobserved = (min_val > max_val).any();
  q.scale = at::where(unobserved, at::ones_like(scale), scale);
  q.zero_point = at::where(unobserved, at::zeros_like(zero_point), zero_point);
  return q;
}

namespace {

// The (scale, zero point) index of flat element i of a tensor with `sizes`.
struct ChannelOf {
  ChannelOf(const at::Tensor& x, int64_t axis) {
    if (axis < 0) return;
    SHRINK_CHECK(axis < x.dim(), "quantization axis ", axis, " out of range for a tensor of rank ", x.dim());
    channels = x.size(axis);
    inner = 1;
    for (int64_t d = axis + 1; d < x.dim(); ++d) inner *= x.size(d);
  }
  int64_t operator()(int64_t i) const { return channels ? (i / inner) % channels : 0; }
  int64_t channels = 0;
  int64_t inner = 1;
};

void check_params(const QParams& q, const ChannelOf& ch) {
  const int64_t expected = ch.channels ? ch.channels : 1;
  SHRINK_CHECK(q.scale.numel() == expected && q.zero_point.numel() == expected, "expected ", expected,
               " scale(s) and zero point(s), got ", q.scale.numel(), " and ", q.zero_point.numel());
}

}  // namespace

at::Tensor quantize_reference(const at::Tensor& x_in, const QParams& q) {
  const auto x = x_in.detach().to(at::kFloat).cpu().contiguous();
  const ChannelOf ch(x, q.axis);
  check_params(q, ch);
  const auto scale = q.scale.to(at::kCPU, at::kFloat).contiguous();
  const auto zp = q.zero_point.to(at::kCPU, at::kLong).contiguous();
  const auto* s = scale.data_ptr<float>();
  const auto* z = zp.data_ptr<int64_t>();
  const auto* in = x.data_ptr<float>();
  const bool is_signed = q.dtype == QDtype::kQInt8;
  auto out = at::empty(x.sizes(), is_signed ? at::kChar : at::kByte);
  const int64_t qmin = is_signed ? -128 : 0, qmax = is_signed ? 127 : 255;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = ch(i);
    // ATen: zero_point + nearbyint(x * (1 / scale)), clamped to the dtype's range.
    const float inv = 1.0f / s[c];
    int64_t v = z[c] + static_cast<int64_t>(std::nearbyint(in[i] * inv));
    v = std::min(std::max(v, qmin), qmax);
    if (is_signed) {
      out.data_ptr<int8_t>()[i] = static_cast<int8_t>(v);
    } else {
      out.data_ptr<uint8_t>()[i] = static_cast<uint8_t>(v);
    }
  }
  return out;
}

at::Tensor dequantize_reference(const at::Tensor& q_int_in, const QParams& q) {
  const auto qi = q_int_in.cpu().contiguous();
  const ChannelOf ch(qi, q.axis);
  check_params(q, ch);
  const auto scale = q.scale.to(at::kCPU, at::kFloat).contiguous();
  const auto zp = q.zero_point.to(at::kCPU, at::kLong).contiguous();
  auto out = at::empty(qi.sizes(), at::kFloat);
  auto* o = out.data_ptr<float>();
  for (int64_t i = 0; i < qi.numel(); ++i) {
    const int64_t c = ch(i);
    const int64_t v = qi.scalar_type() == at::kChar ? qi.data_ptr<int8_t>()[i] : qi.data_ptr<uint8_t>()[i];
    o[i] = static_cast<float>(v - zp.data_ptr<int64_t>()[c]) * scale.data_ptr<float>()[c];
  }
  return out;
}

at::Tensor to_quantized(const at::Tensor& x, const QParams& q) {
  const auto type = q.dtype == QDtype::kQInt8 ? at::kQInt8 : at::kQUInt8;
  if (q.per_channel()) {
    return at::quantize_per_channel(x.to(at::kFloat), q.scale.to(at::kDouble), q.zero_point.to(at::kLong), q.axis,
                                    type);
  }
  return at::quantize_per_tensor(x.to(at::kFloat), q.scale.item<double>(), q.zero_point.item<int64_t>(), type);
}

at::Tensor quantize_to_int(const at::Tensor& x, const QParams& q) {
  auto ints = to_quantized(x, q).int_repr();
  if (q.range.min < q.range.max) ints.clamp_(q.range.min, q.range.max);
  return ints;
}

at::Tensor from_int(const at::Tensor& q_int, const QParams& q) {
  const bool is_signed = q.dtype == QDtype::kQInt8;
  SHRINK_CHECK(q_int.scalar_type() == (is_signed ? at::kChar : at::kByte), "a ", core::name_of(q.dtype),
               " tensor must be stored as ", is_signed ? "int8" : "uint8", ", got ", q_int.scalar_type());
  if (q.per_channel()) {
    return at::_make_per_channel_quantized_tensor(q_int.contiguous(), q.scale.to(at::kDouble),
                                                  q.zero_point.to(at::kLong), q.axis);
  }
  return at::_make_per_tensor_quantized_tensor(q_int.contiguous(), q.scale.item<double>(),
                                               q.zero_point.item<int64_t>());
}

}  // namespace shrink::runtime
