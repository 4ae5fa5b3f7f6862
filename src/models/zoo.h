// The model zoo: typed options and builders for the architectures shrink ships with.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/classifier.h"
#include "models/model.h"

namespace shrink::models {

// Fully connected network; hidden {300, 100} is LeNet-300-100.
struct MlpOptions {
  TORCH_ARG(std::vector<int64_t>, hidden) = std::vector<int64_t>{300, 100};
  TORCH_ARG(bool, batch_norm) = false;
  TORCH_ARG(double, dropout) = 0.0;
};

// LeNet-5 with ReLU and max pooling (6 and 16 5×5 filters, 120-84 fully connected).
struct LeNet5Options {};

// Blocks of conv(k×k, same padding) [→ BatchNorm] → ReLU → MaxPool(2), then fully connected layers.
struct ConvNetOptions {
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{32, 64};
  TORCH_ARG(int64_t, kernel_size) = 3;
  TORCH_ARG(std::vector<int64_t>, fc) = std::vector<int64_t>{128};
  TORCH_ARG(bool, batch_norm) = true;
  TORCH_ARG(double, dropout) = 0.0;
};

// ResNet for small images (He et al. 2016, the CIFAR variant; widths {16, 32, 64} with 3 blocks a
// stage is ResNet-20): a 3×3 stem conv → BN → ReLU, then one stage per width of `blocks` residual
// blocks (every stage after the first halves the resolution in its first block, with a 1×1
// projection shortcut), global average pooling and one Linear.
struct ResNetOptions {
  TORCH_ARG(std::vector<int64_t>, widths) = std::vector<int64_t>{16, 32, 64};
  TORCH_ARG(int64_t, blocks) = 3;
};

// Build the model for the given input; parameters are initialised from LibTorch's global
// generator, so seed it first (torch::manual_seed) for reproducible weights.
Classifier build_model(const MlpOptions& options, const ModelInput& input);
Classifier build_model(const LeNet5Options& options, const ModelInput& input);
Classifier build_model(const ConvNetOptions& options, const ModelInput& input);
Classifier build_model(const ResNetOptions& options, const ModelInput& input);

class ArchitectureRegistry;
// Registers mlp, lenet5, convnet and resnet (the registry does this when it is first used).
void add_zoo(ArchitectureRegistry& registry);

}  // namespace shrink::models
