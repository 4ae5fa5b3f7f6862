// Optimizer factory and learning-rate setter shared by the trainer and schedules.
#include "train/optimizer.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include "core/error.h"
#include "runtime/fused_sgd.h"

namespace shrink::train {

using core::cat;

void validate(const OptimizerOptions& o) {
  if (o.name() != "sgd" && o.name() != "adam" && o.name() != "adamw") {
    throw core::UsageError(cat("optimizer must be one of sgd, adam, adamw; got '", o.name(), "'"));
  }
  if (!(o.lr() > 0)) throw core::UsageError(cat("learning rate must be > 0, got ", o.lr()));
  if (o.momentum() < 0 || o.momentum() >= 1) throw core::UsageError(cat("momentum must be in [0, 1), got ", o.momentum()));
  if (o.nesterov() && o.momentum() <= 0) throw core::UsageError("nesterov needs momentum > 0");
  if (o.weight_decay() < 0) throw core::UsageError(cat("weight_decay must be >= 0, got ", o.weight_decay()));
  if (o.beta1() < 0 || o.beta1() >= 1) throw core::UsageError(cat("beta1 must be in [0, 1), got ", o.beta1()));
  if (o.beta2() < 0 || o.beta2() >= 1) throw core::UsageError(cat("beta2 must be in [0, 1), got ", o.beta2()));
  if (!(o.eps() > 0)) throw core::UsageError(cat("eps must be > 0, got ", o.eps()));
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<at::Tensor>& params,
                                                        const OptimizerOptions& o) {
  validate(o);
  namespace optim = torch::optim;
  if (o.name() == "sgd") {
    return std::make_unique<runtime::FusedSGD>(
        params, optim::SGDOptions(o.lr()).momentum(o.momentum()).nesterov(o.nesterov()).weight_decay(o.weight_decay()));
  }
  if (o.name() == "adam") {
    return std::make_unique<optim::Adam>(params, optim::AdamOptions(o.lr())
                                                     .betas({o.beta1(), o.beta2()})
                                                     .eps(o.eps())
                                                     .weight_decay(o.weight_decay()));
  }
  return std::make_unique<optim::AdamW>(
      params, optim::AdamWOptions(o.lr()).betas({o.beta1(), o.beta2()}).eps(o.eps()).weight_decay(o.weight_decay()));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace shrink::train
