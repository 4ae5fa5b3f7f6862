// The model zoo: typed options per architecture and the name → builder registry recipes use.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "models/classifier.h"

namespace shrink::models {

// What the data dictates: the sample shape (without batch) and the number of classes.
struct ModelInput {
  std::vector<int64_t> shape;
  int64_t num_classes = 10;
};

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

using ModelOptions = std::variant<MlpOptions, LeNet5Options, ConvNetOptions>;

// Registered architecture names, in the order listed to users.
const std::vector<std::string>& architectures();
std::string arch_name(const ModelOptions& options);
// Builds the model for the given input; parameters are initialised from LibTorch's global
// generator, so seed it first (torch::manual_seed) for reproducible weights.
Classifier build_model(const ModelOptions& options, const ModelInput& input);

}  // namespace shrink::models
