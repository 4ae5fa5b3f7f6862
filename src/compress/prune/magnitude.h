// L1 (magnitude) mask computation with torch.nn.utils.prune's semantics: how many entries are
// pruned (round-half-to-even of amount × numel) and which (smallest |w|, ties as torch.topk).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
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

// N:M mask: in every group of `m` consecutive weights along the input dimension, the `zeros`
// smallest |w| pruned (already-pruned entries first) — torch.ao's WeightNormSparsifier with
// sparse_block_shape (1, m) and zeros_per_block for a Linear [out, in]. A Conv2d weight [out, in,
// kh, kw] is grouped along `in` at each kernel position (channels-last, as sparse GEMMs read it).
// `in` must be a multiple of m (nm_group_problem says why not).
at::Tensor nm_mask(const at::Tensor& weight, int64_t m, int64_t zeros, const at::Tensor& current_mask = {});
// Why `weight` cannot be grouped by `m` ("" when it can).
std::string nm_group_problem(const at::Tensor& weight, int64_t m);

}  // namespace shrink::compress::prune
