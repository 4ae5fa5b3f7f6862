// Int8 Conv2d: packs through the dispatcher (quantized::conv2d_prepack), runs the packed kernel.
#include "compress/quantize/quantized_conv2d.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "core/error.h"
#include "core/torch_compat.h"

namespace shrink::compress::quantize {

using core::cat;

Conv2dGeometry geometry_of(const torch::nn::Conv2dImpl& conv) {
  const auto& o = conv.options;
  if (torch::enumtype::get_enum_name(o.padding_mode()) != "kZeros") {
    throw core::UsageError(cat("an int8 Conv2d needs zero padding, got padding mode ",
                               torch::enumtype::get_enum_name(o.padding_mode())));
  }
  const auto vec = [](const torch::ExpandingArray<2>& a) { return std::vector<int64_t>(a->begin(), a->end()); };
  Conv2dGeometry g;
  if (const auto* explicit_padding = compat::get_if<torch::ExpandingArray<2>>(o.padding())) {
    g.padding = vec(*explicit_padding);
  } else if (compat::get_if<torch::enumtype::kValid>(o.padding())) {
    g.padding = {0, 0};
  } else {
    // 'same' (stride 1): total padding dilation × (kernel − 1) per side pair, symmetric when even.
    for (int d = 0; d < 2; ++d) {
      const int64_t total = (*o.dilation())[d] * ((*o.kernel_size())[d] - 1);
      SHRINK_CHECK(total % 2 == 0, "an int8 Conv2d needs symmetric padding ('same' with an even kernel is not)");
      g.padding.push_back(total / 2);
    }
  }
  g.in_channels = o.in_channels();
  g.out_channels = o.out_channels();
  g.groups = o.groups();
  g.kernel = vec(o.kernel_size());
  g.stride = vec(o.stride());
  g.dilation = vec(o.dilation());
  return g;
}

QuantizedConv2dImpl::QuantizedConv2dImpl(Conv2dGeometry g, bool per_channel, bool relu)
    : Int8LayerImpl({g.out_channels, g.in_channels / std::max<int64_t>(g.groups, 1), g.kernel.at(0), g.kernel.at(1)},
                    per_channel, Activations::kStatic, relu),
      geometry_(std::move(g)) {}

at::Tensor QuantizedConv2dImpl::forward(const at::Tensor& x) {
  use_backend(backend());
  if (stale() || !packed_) {
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::conv2d_prepack", "");
    torch::jit::Stack stack{quantized_weight(), c10::optional<at::Tensor>(bias_), c10::List<int64_t>(geometry_.stride),
                            c10::List<int64_t>(geometry_.padding), c10::List<int64_t>(geometry_.dilation),
                            geometry_.groups};
    op.callBoxed(&stack);
    packed_ = stack.at(0).toCustomClass<ConvPackedParamsBase<2>>();
  }
  auto in = quantized_input(x);
  return relu() ? packed_->apply_relu(in, out_scale_, out_zero_point_) : packed_->apply(in, out_scale_, out_zero_point_);
}

}  // namespace shrink::compress::quantize
