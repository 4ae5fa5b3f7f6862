// Keeps a pruned model pruned while it trains.
#include "compress/prune/mask_keeper.h"

#include <torch/torch.h>

namespace shrink::compress::prune {

MaskKeeper::MaskKeeper(torch::nn::Module& module) {
  static const std::string kSuffix = "_mask";
  const auto params = module.named_parameters();
  for (const auto& b : module.named_buffers()) {
    const auto& name = b.key();
    if (name.size() <= kSuffix.size() || name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0)
      continue;
    const auto* weight = params.find(name.substr(0, name.size() - kSuffix.size()));
    if (!weight || weight->sizes() != b.value().sizes()) continue;
    names_.push_back(name.substr(0, name.size() - kSuffix.size()));
    weights_.push_back(*weight);
    masks_.push_back(b.value());
  }
}

void MaskKeeper::apply() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < weights_.size(); ++i) weights_[i].mul_(masks_[i]);
}

}  // namespace shrink::compress::prune
