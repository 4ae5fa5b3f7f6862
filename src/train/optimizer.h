// Optimizer construction from typed options: SGD (momentum, Nesterov, weight decay), Adam, AdamW.
#pragma once

#include <torch/arg.h>

#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace torch::optim {
class Optimizer;
}

namespace shrink::train {

struct OptimizerOptions {
  TORCH_ARG(std::string, name) = "sgd";  // sgd | adam | adamw
  TORCH_ARG(double, lr) = 0.01;
  TORCH_ARG(double, momentum) = 0.9;     // sgd
  TORCH_ARG(bool, nesterov) = false;     // sgd
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(double, beta1) = 0.9;        // adam, adamw
  TORCH_ARG(double, beta2) = 0.999;      // adam, adamw
  TORCH_ARG(double, eps) = 1e-8;         // adam, adamw
};

// Throws UsageError naming the bad value.
void validate(const OptimizerOptions& options);
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<at::Tensor>& params,
                                                        const OptimizerOptions& options);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace shrink::train
