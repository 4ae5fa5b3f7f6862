// Int8 Linear: packs through the dispatcher (quantized::linear_prepack), runs the packed kernel.
#include "compress/quantize/quantized_linear.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "core/error.h"

namespace shrink::compress::quantize {

QuantizedLinearImpl::QuantizedLinearImpl(int64_t in_features, int64_t out_features, bool per_channel,
                                         Activations activations, bool relu)
    : Int8LayerImpl({out_features, in_features}, per_channel, activations, relu) {}

at::Tensor QuantizedLinearImpl::forward(const at::Tensor& x) {
  use_backend(backend());
  if (stale() || !packed_) {
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
    torch::jit::Stack stack{quantized_weight(), c10::optional<at::Tensor>(bias_)};
    op.callBoxed(&stack);
    packed_ = stack.at(0).toCustomClass<LinearPackedParamsBase>();
  }
  if (activations() == Activations::kDynamic) {
    auto in = x.is_quantized() ? x.dequantize() : x.to(at::kFloat);
    // The kernels take 2-D input; keep any leading dimensions.
    return relu() ? packed_->apply_dynamic_relu(std::move(in), false) : packed_->apply_dynamic(std::move(in), false);
  }
  auto in = quantized_input(x);
  return relu() ? packed_->apply_relu(std::move(in), out_scale_, out_zero_point_)
                : packed_->apply(std::move(in), out_scale_, out_zero_point_);
}

}  // namespace shrink::compress::quantize
