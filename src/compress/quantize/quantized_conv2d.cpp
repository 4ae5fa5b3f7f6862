// Int8 Conv2d: packs through the dispatcher (quantized::conv2d_prepack), runs the packed kernel.
#include "compress/quantize/quantized_conv2d.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "core/error.h"

namespace shrink::compress::quantize {

QuantizedConv2dImpl::QuantizedConv2dImpl(Conv2dGeometry g, bool per_channel, bool relu)
    : Int8LayerImpl({g.out_channels, g.in_channels / std::max<int64_t>(g.groups, 1), g.kernel.at(0), g.kernel.at(1)},
                    per_channel, Activations::kStatic, relu),
      geometry_(std::move(g)) {}

at::Tensor QuantizedConv2dImpl::forward(const at::Tensor& x) {
  use_backend(backend());
  if (stale() || !packed_) {
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::conv2d_prepack", "");
    torch::jit::Stack stack{quantized_weight(),
                            c10::optional<at::Tensor>(bias_),
                            c10::List<int64_t>(geometry_.stride),
                            c10::List<int64_t>(geometry_.padding),
                            c10::List<int64_t>(geometry_.dilation),
                            geometry_.groups};
    op.callBoxed(&stack);
    packed_ = stack.at(0).toCustomClass<ConvPackedParamsBase<2>>();
  }
  auto in = quantized_input(x);
  return relu() ? packed_->apply_relu(in, out_scale_, out_zero_point_)
                : packed_->apply(in, out_scale_, out_zero_point_);
}

}  // namespace shrink::compress::quantize
