// Int8 Linear: packs through the dispatcher (quantized::linear_prepack), runs the packed kernel,
// and offers inference plans its CSR path when its weights are sparse.
#include "compress/quantize/quantized_linear.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>

#include "core/error.h"
#include "core/registration.h"
#include "models/inference_plan.h"
#include "runtime/csr_linear.h"

namespace shrink::compress::quantize {

QuantizedLinearImpl::QuantizedLinearImpl(int64_t in_features, int64_t out_features, bool per_channel,
                                         Activations activations, bool relu)
    : Int8LayerImpl({out_features, in_features}, per_channel, activations, relu) {}

bool QuantizedLinearImpl::gemv_applies(const at::Tensor& x) const {
  if (!own_gemv_ || !gemv_ready_ || x.dim() != 2 || x.size(0) != 1 || !runtime::int8_gemv_has_fast_path()) return false;
  if (!x.is_quantized()) return x.scalar_type() == at::kFloat;
  return x.scalar_type() == at::kQUInt8 && x.qscheme() == at::kPerTensorAffine && x.is_contiguous();
}

at::Tensor QuantizedLinearImpl::gemv_dynamic(const at::Tensor& x) {
  const auto in = x.contiguous();
  const float* values = in.data_ptr<float>();
  const auto [lo, hi] = std::minmax_element(values, values + gemv_.cols);
  runtime::Int8GemvParams p;
  p.relu = relu();
  runtime::dynamic_input_qparams(*lo, *hi, dynamic_reduce_range(), &p.in_scale, &p.in_zero_point);
  row_.resize(static_cast<size_t>(gemv_.cols));
  runtime::quantize_row(values, gemv_.cols, p.in_scale, p.in_zero_point, row_.data());
  auto out = at::empty({1, gemv_.rows}, at::TensorOptions().dtype(at::kFloat));
  runtime::int8_gemv_float(gemv_, row_.data(), p, out.data_ptr<float>());
  return out;
}

at::Tensor QuantizedLinearImpl::gemv_forward(const at::Tensor& x) {
  runtime::Int8GemvParams p;
  p.out_scale = static_cast<float>(out_scale_);
  p.out_zero_point = static_cast<int32_t>(out_zero_point_);
  p.relu = relu();
  const uint8_t* in = nullptr;
  at::Tensor keep;
  if (x.is_quantized()) {
    p.in_scale = static_cast<float>(x.q_scale());
    p.in_zero_point = static_cast<int32_t>(x.q_zero_point());
    in = reinterpret_cast<const uint8_t*>(x.data_ptr());
  } else {
    keep = x.contiguous();
    p.in_scale = static_cast<float>(in_scale_);
    p.in_zero_point = static_cast<int32_t>(in_zero_point_);
    row_.resize(static_cast<size_t>(gemv_.cols));
    runtime::quantize_row(keep.data_ptr<float>(), gemv_.cols, p.in_scale, p.in_zero_point, row_.data());
    in = row_.data();
  }
  auto out =
      at::_empty_affine_quantized({1, gemv_.rows}, at::TensorOptions().dtype(at::kQUInt8), out_scale_, out_zero_point_);
  runtime::int8_gemv(gemv_, in, p, reinterpret_cast<uint8_t*>(out.data_ptr()));
  return out;
}

namespace {

// 255 × 64 × 2 fits in 16 bits: weights within 7 bits leave dynamic activations all 8.
bool wider_than_7_bits(const at::Tensor& int8_weight) {
  return int8_weight.numel() > 0 && int8_weight.to(at::kInt).abs().max().item<int32_t>() > 64;
}

}  // namespace

void QuantizedLinearImpl::ensure_packed() {
  use_backend(backend());
  if (stale() || !packed_) {
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
    torch::jit::Stack stack{quantized_weight(), c10::optional<at::Tensor>(bias_)};
    op.callBoxed(&stack);
    packed_value_ = stack.at(0);
    packed_ = packed_value_.toCustomClass<LinearPackedParamsBase>();
    wide_weights_ = wider_than_7_bits(weight_);
    // The same weights laid out for shrink's GEMV, when they are symmetric (zero point 0).
    gemv_ready_ = weight_zero_point_.eq(0).all().item<bool>();
    if (gemv_ready_) {
      const auto w = weight_.contiguous();
      gemv_.rows = w.size(0);
      gemv_.cols = w.size(1);
      gemv_.values.assign(w.data_ptr<int8_t>(), w.data_ptr<int8_t>() + w.numel());
      const auto sums = w.to(at::kInt).sum(1).to(at::kInt).contiguous();
      gemv_.row_sums.assign(sums.data_ptr<int32_t>(), sums.data_ptr<int32_t>() + gemv_.rows);
      const auto scales = weight_scale_.expand({gemv_.rows}).contiguous();
      gemv_.scales.assign(scales.data_ptr<float>(), scales.data_ptr<float>() + gemv_.rows);
      const auto b = bias_.contiguous();
      gemv_.bias.assign(b.data_ptr<float>(), b.data_ptr<float>() + gemv_.rows);
    }
  }
}

bool QuantizedLinearImpl::dynamic_reduce_range() const {
  if (!int8_sums_may_saturate(backend())) return false;
  return packed_ ? wide_weights_ : wider_than_7_bits(weight_);
}

c10::IValue QuantizedLinearImpl::packed() {
  ensure_packed();
  return packed_value_;
}

at::Tensor QuantizedLinearImpl::forward(const at::Tensor& x) {
  ensure_packed();
  if (activations() == Activations::kStatic && gemv_applies(x)) return gemv_forward(x);
  if (activations() == Activations::kDynamic) {
    auto in = x.is_quantized() ? x.dequantize() : x.to(at::kFloat);
    if (gemv_applies(in)) return gemv_dynamic(in);
    // The kernels take 2-D input; keep any leading dimensions.
    return relu() ? packed_->apply_dynamic_relu(std::move(in), dynamic_reduce_range())
                  : packed_->apply_dynamic(std::move(in), dynamic_reduce_range());
  }
  auto in = quantized_input(x);
  return relu() ? packed_->apply_relu(std::move(in), out_scale_, out_zero_point_)
                : packed_->apply(std::move(in), out_scale_, out_zero_point_);
}

namespace {

// In an inference plan, a static int8 Linear with symmetric, sparse weights may run on the CSR
// kernel: dequantized input, fp32 sums of the nonzero weights, requantized output.
models::PlanOp csr_plan(const std::shared_ptr<QuantizedLinearImpl>& layer, models::PlanContext& ctx) {
  const auto& q = *layer;
  const auto wq = q.weight_qparams();
  if (q.activations() != Activations::kStatic) return {};
  if (wq.zero_point.defined() && wq.zero_point.ne(0).any().item<bool>()) return {};
  const auto& values = q.int8_weight();
  const double sparsity = 1.0 - static_cast<double>(values.count_nonzero().item<int64_t>()) /
                                    static_cast<double>(std::max<int64_t>(values.numel(), 1));
  if (sparsity < ctx.options().min_sparsity() || sparsity == 0) return {};
  const auto scales_t = wq.scale.to(at::kFloat).contiguous().view({-1});
  const std::vector<float> scales(scales_t.data_ptr<float>(), scales_t.data_ptr<float>() + scales_t.numel());
  auto csr = std::make_shared<runtime::CsrWeights>(runtime::csr_from_int8(values, scales, q.float_bias()));
  const auto in = q.input_qparams(), out = q.output_qparams();
  const double in_scale = in.scale.item<double>(), out_scale = out.scale.item<double>();
  const int64_t in_zp = in.zero_point.item<int64_t>(), out_zp = out.zero_point.item<int64_t>();
  const bool relu = q.relu();
  models::PlanOp csr_op = [csr, relu, in_scale, in_zp, out_scale, out_zp](at::Tensor x) {
    x = models::dense_input(x);
    if (!x.is_quantized()) x = at::quantize_per_tensor(x.to(at::kFloat), in_scale, in_zp, at::kQUInt8);
    auto y = runtime::csr_linear(*csr, x.dequantize(), relu);
    return at::quantize_per_tensor(y, out_scale, out_zp, at::kQUInt8);
  };
  models::PlanOp own_op = [layer](at::Tensor x) { return layer->forward(models::dense_input(x)); };
  if (ctx.options().measure_sparse() && !ctx.faster(csr_op, own_op, csr->cols)) return {};
  ctx.uses("csr-linear-int8", /*int8=*/true);
  return csr_op;
}

}  // namespace

SHRINK_ON_LOAD(quantized_linear_planner) {
  models::register_layer_planner(typeid(QuantizedLinearImpl),
                                 [](const std::shared_ptr<torch::nn::Module>& layer, models::PlanContext& ctx) {
                                   return csr_plan(std::static_pointer_cast<QuantizedLinearImpl>(layer), ctx);
                                 });
}

}  // namespace shrink::compress::quantize
