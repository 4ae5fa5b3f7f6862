// Optimizer construction from typed options: SGD (momentum, Nesterov, weight decay), Adam, AdamW.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <memory>
#include <string>
#include <vector>

#include "config/options_spec.h"
#include "core/enum_names.h"

namespace torch::optim {
class Optimizer;
}

namespace shrink::train {

enum class OptimizerKind { kSgd, kAdam, kAdamW };
inline const core::EnumNames<OptimizerKind>& enum_names(OptimizerKind) {
  static const core::EnumNames<OptimizerKind> names{
      {OptimizerKind::kSgd, "sgd"}, {OptimizerKind::kAdam, "adam"}, {OptimizerKind::kAdamW, "adamw"}};
  return names;
}

struct OptimizerOptions {
  TORCH_ARG(OptimizerKind, name) = OptimizerKind::kSgd;
  TORCH_ARG(double, lr) = 0.01;
  TORCH_ARG(double, momentum) = 0.9;  // sgd
  TORCH_ARG(bool, nesterov) = false;  // sgd
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(double, beta1) = 0.9;    // adam, adamw
  TORCH_ARG(double, beta2) = 0.999;  // adam, adamw
  TORCH_ARG(double, eps) = 1e-8;     // adam, adamw
};

// The recipe keys of OptimizerOptions (`optimizer:`), their schema and defaults.
const config::OptionsSpec<OptimizerOptions>& optimizer_spec();
// Throws UsageError naming the bad value.
void validate(const OptimizerOptions& options);
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<at::Tensor>& params,
                                                        const OptimizerOptions& options);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace shrink::train
