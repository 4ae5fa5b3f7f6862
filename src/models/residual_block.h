// A ResNet basic block: body (conv3x3 → BN → ReLU → conv3x3 → BN) plus a shortcut (identity, or a
// strided 1×1 conv → BN when the shape changes), joined by a ReLU'd residual add.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "models/layer_stack.h"
#include "models/residual_add.h"

namespace shrink::models {

// Parameter names: body.{0,1,3,4}.*, shortcut.{0,1}.* (absent for identity), as the PyTorch class
// in docs/models.md names them.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride);
  at::Tensor forward(const at::Tensor& x);

  LayerStack body{nullptr};
  LayerStack shortcut{nullptr};  // empty: identity
  ResidualAdd add{nullptr};
};

TORCH_MODULE(ResidualBlock);

}  // namespace shrink::models
