// Optimizer factory and learning-rate setter shared by the trainer and schedules.
#include "train/optimizer.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include "core/error.h"
#include "runtime/fused_sgd.h"

namespace shrink::train {

using core::cat;

const config::OptionsSpec<OptimizerOptions>& optimizer_spec() {
  using O = OptimizerOptions;
  using config::only_for;
  static const config::OptionsSpec<O> spec({SHRINK_OPTION(O, name, config::one_of<OptimizerKind>()),
                                            SHRINK_OPTION(O, lr, config::positive(), "base learning rate"),
                                            SHRINK_OPTION(O, weight_decay, config::number(0)),
                                            only_for({"sgd"}, SHRINK_OPTION(O, momentum, config::fraction())),
                                            only_for({"sgd"}, SHRINK_OPTION(O, nesterov, config::boolean())),
                                            only_for({"adam", "adamw"}, SHRINK_OPTION(O, beta1, config::fraction())),
                                            only_for({"adam", "adamw"}, SHRINK_OPTION(O, beta2, config::fraction())),
                                            only_for({"adam", "adamw"}, SHRINK_OPTION(O, eps, config::positive()))},
                                           "name");
  return spec;
}

void validate(const OptimizerOptions& o) {
  optimizer_spec().check(o, "optimizer");
  if (o.name() == OptimizerKind::kSgd && o.nesterov() && o.momentum() <= 0) {
    throw core::UsageError("optimizer: nesterov needs momentum > 0");
  }
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<at::Tensor>& params,
                                                        const OptimizerOptions& o) {
  validate(o);
  namespace optim = torch::optim;
  if (o.name() == OptimizerKind::kSgd) {
    return std::make_unique<runtime::FusedSGD>(
        params, optim::SGDOptions(o.lr()).momentum(o.momentum()).nesterov(o.nesterov()).weight_decay(o.weight_decay()));
  }
  if (o.name() == OptimizerKind::kAdam) {
    return std::make_unique<optim::Adam>(
        params, optim::AdamOptions(o.lr()).betas({o.beta1(), o.beta2()}).eps(o.eps()).weight_decay(o.weight_decay()));
  }
  return std::make_unique<optim::AdamW>(
      params, optim::AdamWOptions(o.lr()).betas({o.beta1(), o.beta2()}).eps(o.eps()).weight_decay(o.weight_decay()));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace shrink::train
