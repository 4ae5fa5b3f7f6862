// Residual block construction and forward.
#include "models/residual_block.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

namespace shrink::models {

namespace nn = torch::nn;

ResidualBlockImpl::ResidualBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  body = register_module("body", LayerStack());
  body->push_back(nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, 3).stride(stride).padding(1).bias(false)));
  body->push_back(nn::BatchNorm2d(out_channels));
  body->push_back(nn::ReLU());
  body->push_back(nn::Conv2d(nn::Conv2dOptions(out_channels, out_channels, 3).padding(1).bias(false)));
  body->push_back(nn::BatchNorm2d(out_channels));
  shortcut = register_module("shortcut", LayerStack());
  if (stride != 1 || in_channels != out_channels) {
    shortcut->push_back(nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, 1).stride(stride).bias(false)));
    shortcut->push_back(nn::BatchNorm2d(out_channels));
  }
  add = register_module("add", ResidualAdd(true));
}

at::Tensor ResidualBlockImpl::forward(const at::Tensor& x) {
  auto y = body->forward(x);
  return add->forward(y, shortcut->size() > 0 ? shortcut->forward(x) : x);
}

}  // namespace shrink::models
