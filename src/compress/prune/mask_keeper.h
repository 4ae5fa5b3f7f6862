// Keeps a pruned model pruned while it trains: the masks it carries hold after every step.
#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "train/callback.h"

namespace shrink::compress::prune {

// Every `<param>_mask` buffer of a module beside its parameter, as (weight, mask) pairs that share
// the module's storage. A model pruned once (a prune stage, or a file with masks) keeps its zeros
// through later training, as torch.nn.utils.prune's masks do until prune.remove.
class MaskKeeper : public train::TrainerCallback {
 public:
  explicit MaskKeeper(torch::nn::Module& module);

  // True when the module carries at least one mask.
  bool any() const { return !weights_.empty(); }
  // The masked parameters' names.
  const std::vector<std::string>& names() const { return names_; }
  // w *= mask for every masked parameter.
  void apply();

  void on_train_begin(train::Trainer&) override { apply(); }
  void on_step_end(train::Trainer&, const train::StepInfo&) override { apply(); }

 private:
  std::vector<std::string> names_;
  std::vector<at::Tensor> weights_, masks_;
};

}  // namespace shrink::compress::prune
