// A BatchNorm in eval mode as a per-channel affine map, for folding it into the layer before it.
#pragma once

#include <ATen/core/Tensor.h>

namespace shrink::models {

// y = x · scale + shift, per channel; both undefined when the layer keeps no running statistics.
struct Affine {
  at::Tensor scale, shift;
};

template <class BatchNormImpl>
Affine affine_of(const BatchNormImpl& bn) {
  if (!bn.running_mean.defined() || !bn.running_var.defined()) return {};
  auto scale = (bn.running_var + bn.options.eps()).rsqrt();
  if (bn.weight.defined()) scale = scale * bn.weight;
  auto shift = -bn.running_mean * scale;
  if (bn.bias.defined()) shift = shift + bn.bias;
  return {scale.detach(), shift.detach()};
}

}  // namespace shrink::models
