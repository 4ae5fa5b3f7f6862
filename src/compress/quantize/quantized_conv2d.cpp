// Int8 Conv2d: packs for shrink's kernel and, where LibTorch still has it, through the dispatcher
// (quantized::conv2d_prepack), and runs whichever applies.
#include "compress/quantize/quantized_conv2d.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "core/cpu_features.h"
#include "core/error.h"

namespace shrink::compress::quantize {

QuantizedConv2dImpl::QuantizedConv2dImpl(Conv2dGeometry g, bool per_channel, bool relu)
    : Int8LayerImpl({g.out_channels, g.in_channels / std::max<int64_t>(g.groups, 1), g.kernel.at(0), g.kernel.at(1)},
                    per_channel, Activations::kStatic, relu),
      geometry_(std::move(g)) {}

namespace {

const char* const kConvPrepack = "quantized::conv2d_prepack";

bool libtorch_has_conv() {
  static const bool has = runtime::libtorch_has_op(kConvPrepack);
  return has;
}

}  // namespace

void QuantizedConv2dImpl::ensure_packed() {
  use_backend(backend());
  if (!stale() && ready_) return;
  ready_ = false;
  packed_.reset();  // both packed again where their kernels run
  own_packed_ = false;
  own_fits_ = geometry_.groups == 1 && weight_zero_point_.eq(0).all().item<bool>();
  ready_ = true;
}

ConvPackedParamsBase<2>& QuantizedConv2dImpl::libtorch_pack() {
  if (!packed_) {
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow(kConvPrepack, "");
    torch::jit::Stack stack{quantized_weight(),
                            c10::optional<at::Tensor>(bias_),
                            c10::List<int64_t>(geometry_.stride),
                            c10::List<int64_t>(geometry_.padding),
                            c10::List<int64_t>(geometry_.dilation),
                            geometry_.groups};
    op.callBoxed(&stack);
    packed_ = stack.at(0).toCustomClass<ConvPackedParamsBase<2>>();
  }
  return *packed_;
}

bool auto_prefers_own_conv2d() {
  switch (runtime::int8_conv2d_best_path()) {
    case runtime::Int8Path::kAvx512Vnni:
    case runtime::Int8Path::kAvxVnni:
      return true;
    case runtime::Int8Path::kAvx2:
      return !core::cpu_has_int8_vnni();
    default:
      return false;
  }
}

bool QuantizedConv2dImpl::runs_own(const at::Tensor& x) {
  using runtime::Int8Kernels;
  const bool quint8_input =
      !x.is_quantized() || (x.scalar_type() == at::kQUInt8 && x.qscheme() == at::kPerTensorAffine);
  const bool wanted = kernels() == Int8Kernels::kShrink ||
                      (kernels() == Int8Kernels::kAuto && (!libtorch_has_conv() || auto_prefers_own_conv2d()));
  if (wanted && own_fits_ && quint8_input) return true;
  if (libtorch_has_conv() && kernels() != Int8Kernels::kShrink) return false;
  if (kernels() == Int8Kernels::kLibTorch) runtime::throw_missing_op("int8 Conv2d", kConvPrepack);
  SHRINK_CHECK(own_fits_, "int8 Conv2d: shrink's kernel takes one group and symmetric weights (every zero point 0), ",
               "this layer has ", geometry_.groups, " group(s) and zero points ",
               weight_zero_point_.eq(0).all().item<bool>() ? "all 0" : "not all 0",
               libtorch_has_conv() ? std::string("; run it on LibTorch's kernels (int8 kernels libtorch)")
                                   : core::cat("; and this LibTorch has no ", kConvPrepack));
  throw core::Error(core::cat("int8 Conv2d: shrink's kernel takes a per-tensor quint8 or a float input, got ",
                              x.scalar_type(), " (quantized, not per-tensor quint8)"));
}

at::Tensor QuantizedConv2dImpl::own_forward(const at::Tensor& x, bool pooled) {
  if (!own_packed_) {
    const auto w = weight_.contiguous();
    const auto scales = weight_scale_.to(at::kFloat).expand({geometry_.out_channels}).contiguous();
    const auto b = bias_.to(at::kFloat).contiguous();
    own_ = runtime::pack_int8_conv2d(geometry_, w.data_ptr<int8_t>(),
                                     {scales.data_ptr<float>(), scales.data_ptr<float>() + scales.numel()},
                                     {b.data_ptr<float>(), b.data_ptr<float>() + b.numel()});
    own_packed_ = true;
  }
  const auto in = quantized_input(x, at::MemoryFormat::ChannelsLast).contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t batch = in.size(0), height = in.size(2), width = in.size(3);
  const auto [oh, ow] = runtime::int8_conv2d_output_size(geometry_, height, width);
  runtime::Int8GemvParams p;
  p.in_scale = static_cast<float>(in.q_scale());
  p.in_zero_point = static_cast<int32_t>(in.q_zero_point());
  p.out_scale = static_cast<float>(out_scale_);
  p.out_zero_point = static_cast<int32_t>(out_zero_point_);
  p.relu = relu();
  const auto* bytes = reinterpret_cast<const uint8_t*>(in.data_ptr());
  auto out = at::_empty_affine_quantized({batch, geometry_.out_channels, pooled ? oh / 2 : oh, pooled ? ow / 2 : ow},
                                         at::TensorOptions().dtype(at::kQUInt8), out_scale_, out_zero_point_,
                                         at::MemoryFormat::ChannelsLast);
  auto* dst = reinterpret_cast<uint8_t*>(out.data_ptr());
  if (pooled) {
    runtime::int8_conv2d_max_pool2x2(own_, bytes, batch, height, width, p, dst);
  } else {
    runtime::int8_conv2d(own_, bytes, batch, height, width, p, dst);
  }
  return out;
}

void QuantizedConv2dImpl::check_input(const at::Tensor& x) const {
  SHRINK_CHECK(x.dim() == 4 && x.size(1) == geometry_.in_channels, "int8 Conv2d takes [N, ", geometry_.in_channels,
               ", H, W], got ", x.sizes());
}

at::Tensor QuantizedConv2dImpl::forward(const at::Tensor& x) {
  ensure_packed();
  check_input(x);
  if (runs_own(x)) return own_forward(x, false);
  auto in = quantized_input(x);
  auto& pack = libtorch_pack();
  return relu() ? pack.apply_relu(in, out_scale_, out_zero_point_) : pack.apply(in, out_scale_, out_zero_point_);
}

at::Tensor QuantizedConv2dImpl::forward_max_pool2x2(const at::Tensor& x) {
  ensure_packed();
  check_input(x);
  if (!runs_own(x)) return {};
  const auto [oh, ow] = runtime::int8_conv2d_output_size(geometry_, x.size(2), x.size(3));
  if (oh < 2 || ow < 2) return {};
  return own_forward(x, true);
}

}  // namespace shrink::compress::quantize
