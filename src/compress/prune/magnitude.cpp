// Magnitude masks: one topk over |w| (already-pruned entries ranked first), as PyTorch does it.
#include "compress/prune/magnitude.h"

#include <ATen/ATen.h>

#include <cfenv>
#include <cmath>

#include "core/error.h"

namespace shrink::compress::prune {

int64_t entries_to_prune(double amount, int64_t numel) {
  SHRINK_CHECK(amount >= 0 && amount <= 1, "amount must be in [0, 1], got ", amount);
  // Python 3's round() is round-half-to-even; nearbyint in the default FE_TONEAREST mode is too.
  const int saved = std::fegetround();
  std::fesetround(FE_TONEAREST);
  const double k = std::nearbyint(amount * static_cast<double>(numel));
  std::fesetround(saved);
  return static_cast<int64_t>(k);
}

namespace {

// |w| with already-pruned entries set to -1, so they are always among the smallest.
at::Tensor importance(const at::Tensor& weight, const at::Tensor& mask) {
  auto score = weight.detach().abs().to(at::kFloat).reshape(-1);
  if (mask.defined()) score = score.masked_fill(mask.reshape(-1).eq(0), -1.0f);
  return score;
}

at::Tensor mask_from(const at::Tensor& flat_score, int64_t k, const at::Tensor& weight, const at::Tensor& current) {
  auto mask = at::ones({flat_score.numel()}, weight.options().dtype(weight.scalar_type()));
  if (k > 0) {
    const auto idx = std::get<1>(at::topk(flat_score, k, /*dim=*/-1, /*largest=*/false));
    mask.index_fill_(0, idx, 0);
  }
  mask = mask.view(weight.sizes());
  // Masks never revive an entry: a smaller later target keeps what was pruned.
  if (current.defined()) mask.mul_(current.to(mask.scalar_type()));
  return mask;
}

}  // namespace

at::Tensor l1_mask(const at::Tensor& weight, double amount, const at::Tensor& current_mask) {
  SHRINK_CHECK(amount >= 0 && amount < 1, "sparsity must be in [0, 1), got ", amount);
  SHRINK_CHECK(!current_mask.defined() || current_mask.sizes() == weight.sizes(), "mask shape ", current_mask.sizes(),
               " does not match weight shape ", weight.sizes());
  const int64_t k = entries_to_prune(amount, weight.numel());
  return mask_from(importance(weight, current_mask), k, weight, current_mask);
}

std::vector<at::Tensor> global_l1_masks(const std::vector<at::Tensor>& weights, double amount,
                                        const std::vector<at::Tensor>& current_masks) {
  SHRINK_CHECK(amount >= 0 && amount < 1, "sparsity must be in [0, 1), got ", amount);
  SHRINK_CHECK(!weights.empty(), "global pruning needs at least one tensor");
  SHRINK_CHECK(current_masks.empty() || current_masks.size() == weights.size(), "got ", current_masks.size(),
               " masks for ", weights.size(), " tensors");
  std::vector<at::Tensor> scores;
  int64_t total = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    scores.push_back(importance(weights[i], current_masks.empty() ? at::Tensor() : current_masks[i]));
    total += weights[i].numel();
  }
  const auto all = at::cat(scores);
  auto keep = at::ones({total}, all.options());  // on the weights' device
  const int64_t k = entries_to_prune(amount, total);
  if (k > 0) keep.index_fill_(0, std::get<1>(at::topk(all, k, -1, false)), 0);
  std::vector<at::Tensor> masks;
  int64_t offset = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const int64_t n = weights[i].numel();
    auto m = keep.narrow(0, offset, n).to(weights[i].scalar_type()).view(weights[i].sizes()).clone();
    if (!current_masks.empty() && current_masks[i].defined()) m.mul_(current_masks[i].to(m.scalar_type()));
    masks.push_back(m);
    offset += n;
  }
  return masks;
}

std::string nm_group_problem(const at::Tensor& weight, int64_t m) {
  if (weight.dim() != 2 && weight.dim() != 4) return core::cat("its weight has rank ", weight.dim(), ", not 2 or 4");
  if (weight.size(1) % m != 0) return core::cat("its ", weight.size(1), " inputs are not a multiple of m = ", m);
  return "";
}

namespace {

// [out, in] or [out, in, kh, kw] → rows of inputs: [out, in] or [out·kh·kw, in].
at::Tensor input_rows(const at::Tensor& t) {
  return t.dim() == 2 ? t : t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)});
}

at::Tensor from_input_rows(const at::Tensor& rows, const at::Tensor& like) {
  if (like.dim() == 2) return rows.reshape(like.sizes());
  return rows.reshape({like.size(0), like.size(2), like.size(3), like.size(1)}).permute({0, 3, 1, 2}).contiguous();
}

}  // namespace

at::Tensor nm_mask(const at::Tensor& weight, int64_t m, int64_t zeros, const at::Tensor& current_mask) {
  SHRINK_CHECK(m >= 1, "m must be at least 1, got ", m);
  SHRINK_CHECK(zeros >= 0 && zeros < m, "zeros per group must be in [0, m), got ", zeros, " of ", m);
  const auto problem = nm_group_problem(weight, m);
  SHRINK_CHECK(problem.empty(), "cannot group the weight ", weight.sizes(), " by ", m, ": ", problem);
  SHRINK_CHECK(!current_mask.defined() || current_mask.sizes() == weight.sizes(), "mask shape ", current_mask.sizes(),
               " does not match weight shape ", weight.sizes());
  auto score = weight.detach().abs().to(at::kFloat);
  if (current_mask.defined()) score = score.masked_fill(current_mask.eq(0), -1.0f);
  const auto groups = input_rows(score).reshape({-1, m});
  auto keep = at::ones(groups.sizes(), groups.options());
  if (zeros > 0) keep.scatter_(1, std::get<1>(at::topk(groups, zeros, /*dim=*/1, /*largest=*/false)), 0.0f);
  auto mask = from_input_rows(keep, weight).to(weight.scalar_type());
  // Never revives an entry: a group whose pruned weights a schedule already chose keeps them pruned.
  if (current_mask.defined()) mask.mul_(current_mask.to(mask.scalar_type()));
  return mask;
}

}  // namespace shrink::compress::prune
