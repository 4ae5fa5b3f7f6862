// L1 (magnitude) mask computation with torch.nn.utils.prune's semantics: how many entries are
// pruned (round-half-to-even of amount × numel) and which (smallest |w|, ties as torch.topk).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace shrink::compress::prune {

// Number of entries pruned for `amount` of `numel`: Python's round(amount * numel).
int64_t entries_to_prune(double amount, int64_t numel);

// Mask (same shape and dtype as `weight`; 1 = kept) pruning round(amount × numel) entries of
// smallest magnitude. Entries already 0 in `current_mask` (undefined = none) stay pruned and are
// taken first. With no current mask this equals prune.l1_unstructured(amount=amount).
at::Tensor l1_mask(const at::Tensor& weight, double amount, const at::Tensor& current_mask = {});

// One threshold across tensors: prune.global_unstructured(L1Unstructured, amount=amount) over
// `weights` in the given order. current_masks may be empty or parallel to weights.
std::vector<at::Tensor> global_l1_masks(const std::vector<at::Tensor>& weights, double amount,
                                        const std::vector<at::Tensor>& current_masks = {});

}  // namespace shrink::compress::prune
