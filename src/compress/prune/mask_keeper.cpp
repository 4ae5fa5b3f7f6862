// Keeps a pruned model pruned while it trains.
#include "compress/prune/mask_keeper.h"

#include <torch/torch.h>

#include "io/state_dict.h"

namespace shrink::compress::prune {

MaskKeeper::MaskKeeper(torch::nn::Module& module) {
  const auto params = module.named_parameters();
  for (const auto& b : module.named_buffers()) {
    const std::string param = io::masked_parameter(b.key());
    if (param.empty()) continue;
    const auto* weight = params.find(param);
    if (!weight || weight->sizes() != b.value().sizes()) continue;
    names_.push_back(param);
    weights_.push_back(*weight);
    masks_.push_back(b.value());
  }
}

void MaskKeeper::apply() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < weights_.size(); ++i) weights_[i].mul_(masks_[i]);
}

}  // namespace shrink::compress::prune
