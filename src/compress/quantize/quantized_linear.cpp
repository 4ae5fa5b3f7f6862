// Int8 Linear: packs for shrink's kernels (the convolution's tiles) and, where
// LibTorch still has it, through the dispatcher (quantized::linear_prepack); runs whichever applies, and offers
// inference plans its CSR path when its weights are sparse.
#include "compress/quantize/quantized_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>

#include "core/error.h"
#include "core/registration.h"
#include "models/inference_plan.h"
#include "runtime/csr_linear.h"
#include "runtime/int8_linear.h"

namespace shrink::compress::quantize {

QuantizedLinearImpl::QuantizedLinearImpl(int64_t in_features, int64_t out_features, bool per_channel,
                                         Activations activations, bool relu)
    : Int8LayerImpl({out_features, in_features}, per_channel, activations, relu) {}

namespace {

const char* const kLinearPrepack = "quantized::linear_prepack";

bool libtorch_has_linear() {
  static const bool has = runtime::libtorch_has_op(kLinearPrepack);
  return has;
}

}  // namespace

void QuantizedLinearImpl::check_rows(const at::Tensor& x) const {
  const int64_t cols = weight_.size(1);
  SHRINK_CHECK(cols > 0, "int8 Linear with no input features");
  SHRINK_CHECK(x.dim() >= 1 && x.size(-1) == cols, "int8 Linear takes [..., ", cols, "], got ", x.sizes());
}

bool QuantizedLinearImpl::runs_own(const at::Tensor& x) const {
  using runtime::Int8Kernels;
  const bool static_input =
      !x.is_quantized() || (x.scalar_type() == at::kQUInt8 && x.qscheme() == at::kPerTensorAffine);
  const bool fits =
      own_ready_ && (activations() == Activations::kDynamic ? x.scalar_type() == at::kFloat : static_input);
  // Auto: rows on the tiles wherever they have a vector path, static or dynamic (as fast as
  // LibTorch's kernels or faster at 1 and 64 rows on AVX-512 VNNI, AVX-VNNI and AVX2:
  // docs/quantization.md).
  const bool own_faster = runtime::int8_conv2d_best_path() != runtime::Int8Path::kReference;
  const bool wanted =
      kernels() == Int8Kernels::kShrink || (kernels() == Int8Kernels::kAuto && (!libtorch_has_linear() || own_faster));
  if (wanted && fits) return true;
  if (libtorch_has_linear() && kernels() != Int8Kernels::kShrink) return false;
  if (kernels() == Int8Kernels::kLibTorch) runtime::throw_missing_op("int8 Linear", kLinearPrepack);
  SHRINK_CHECK(own_ready_,
               "int8 Linear: shrink's kernels take symmetric weights (every zero point 0) and this layer's "
               "are not",
               libtorch_has_linear() ? std::string("; run it on LibTorch's kernels (int8 kernels libtorch)")
                                     : core::cat("; and this LibTorch has no ", kLinearPrepack));
  throw core::Error(core::cat("int8 Linear: shrink's kernels take a per-tensor quint8 or a float input, got ",
                              x.scalar_type(), x.is_quantized() ? " (quantized, not per-tensor quint8)" : ""));
}

at::Tensor QuantizedLinearImpl::own_static(const at::Tensor& x) {
  check_rows(x);
  runtime::Int8GemvParams p;
  p.out_scale = static_cast<float>(out_scale_);
  p.out_zero_point = static_cast<int32_t>(out_zero_point_);
  p.relu = relu();
  const uint8_t* in = nullptr;
  at::Tensor keep;
  if (x.is_quantized()) {
    keep = x.contiguous();
    p.in_scale = static_cast<float>(keep.q_scale());
    p.in_zero_point = static_cast<int32_t>(keep.q_zero_point());
    in = reinterpret_cast<const uint8_t*>(keep.data_ptr());
  } else {
    keep = x.to(at::kFloat).contiguous();
    p.in_scale = static_cast<float>(in_scale_);
    p.in_zero_point = static_cast<int32_t>(in_zero_point_);
    rows_.resize(static_cast<size_t>(keep.numel()));
    runtime::quantize_row(keep.data_ptr<float>(), keep.numel(), p.in_scale, p.in_zero_point, rows_.data());
    in = rows_.data();
  }
  const int64_t cols = weight_.size(1), rows = weight_.size(0), n = x.numel() / cols;
  auto sizes = x.sizes().vec();
  sizes.back() = rows;
  auto out = at::_empty_affine_quantized(sizes, at::TensorOptions().dtype(at::kQUInt8), out_scale_, out_zero_point_);
  auto* o = reinterpret_cast<uint8_t*>(out.data_ptr());
  runtime::int8_linear(tiles_, in, n, p, o);  // shares the rows among ATen's threads itself
  return out;
}

at::Tensor QuantizedLinearImpl::own_dynamic(const at::Tensor& x) {
  check_rows(x);
  const auto in = x.contiguous();
  const float* values = in.data_ptr<float>();
  const int64_t count = in.numel();
  // One scale for the whole batch, as LibTorch's dynamic kernels quantize it.
  runtime::Int8GemvParams p;
  p.relu = relu();
  const auto range = runtime::float_range(values, count);
  runtime::dynamic_input_qparams(range.min, range.max, dynamic_reduce_range(), &p.in_scale, &p.in_zero_point);
  rows_.resize(static_cast<size_t>(count));
  runtime::quantize_row(values, count, p.in_scale, p.in_zero_point, rows_.data());
  const int64_t cols = weight_.size(1), rows = weight_.size(0), n = count / cols;
  auto sizes = x.sizes().vec();
  sizes.back() = rows;
  auto out = at::empty(sizes, at::TensorOptions().dtype(at::kFloat));
  float* o = out.data_ptr<float>();
  const uint8_t* q = rows_.data();
  runtime::int8_linear_float(tiles_, q, n, p, o);
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
  if (!stale() && ready_) return;
  ready_ = false;
  packed_.reset();  // LibTorch's, packed again where its kernels run (libtorch_pack)
  packed_value_ = c10::IValue();
  wide_weights_ = wider_than_7_bits(weight_);
  // The same weights laid out for shrink's kernels (the convolution's tiles), when they are
  // symmetric (zero point 0).
  own_ready_ = weight_zero_point_.eq(0).all().item<bool>();
  tiles_ = {};
  if (own_ready_) {
    const auto w = weight_.contiguous();
    const int64_t rows = w.size(0), cols = w.size(1);
    const auto scales_t = weight_scale_.expand({rows}).contiguous();
    std::vector<float> scales(scales_t.data_ptr<float>(), scales_t.data_ptr<float>() + rows);
    const auto b = bias_.contiguous();
    std::vector<float> bias(b.data_ptr<float>(), b.data_ptr<float>() + rows);
    tiles_ = runtime::pack_int8_linear(w.data_ptr<int8_t>(), rows, cols, scales, bias);
  }
  ready_ = true;
}

LinearPackedParamsBase& QuantizedLinearImpl::libtorch_pack() {
  ensure_packed();
  if (!packed_) {
    if (!libtorch_has_linear()) runtime::throw_missing_op("int8 Linear", kLinearPrepack);
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow(kLinearPrepack, "");
    torch::jit::Stack stack{quantized_weight(), c10::optional<at::Tensor>(bias_)};
    op.callBoxed(&stack);
    packed_value_ = stack.at(0);
    packed_ = packed_value_.toCustomClass<LinearPackedParamsBase>();
  }
  return *packed_;
}

bool QuantizedLinearImpl::dynamic_reduce_range() const {
  if (!int8_sums_may_saturate(backend())) return false;
  return ready_ ? wide_weights_ : wider_than_7_bits(weight_);
}

c10::IValue QuantizedLinearImpl::packed() {
  libtorch_pack();
  return packed_value_;
}

at::Tensor QuantizedLinearImpl::forward(const at::Tensor& x) {
  ensure_packed();
  if (activations() == Activations::kDynamic) {
    auto in = x.is_quantized() ? x.dequantize() : x.to(at::kFloat);
    if (runs_own(in)) return own_dynamic(in);
    // The kernels take 2-D input; keep any leading dimensions.
    auto& pack = libtorch_pack();
    return relu() ? pack.apply_dynamic_relu(std::move(in), dynamic_reduce_range())
                  : pack.apply_dynamic(std::move(in), dynamic_reduce_range());
  }
  if (runs_own(x)) return own_static(x);
  auto in = quantized_input(x);
  auto& pack = libtorch_pack();
  return relu() ? pack.apply_relu(std::move(in), out_scale_, out_zero_point_)
                : pack.apply(std::move(in), out_scale_, out_zero_point_);
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
