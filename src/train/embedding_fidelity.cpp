// Embedding fidelity without labels: per-sample cosine and the rank agreement of pairwise similarities.
#include "train/embedding_fidelity.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace shrink::train {

namespace {

// Ranks 1..n of `v`, ties given the mean of the ranks they span.
std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return v[x] < v[y]; });
  std::vector<double> ranks(v.size());
  for (size_t start = 0; start < order.size();) {
    size_t end = start + 1;
    while (end < order.size() && v[order[end]] == v[order[start]]) ++end;
    const double rank = 0.5 * static_cast<double>(start + end - 1) + 1.0;
    for (size_t k = start; k < end; ++k) ranks[order[k]] = rank;
    start = end;
  }
  return ranks;
}

std::vector<double> to_vector(const at::Tensor& t) {
  const auto d = t.detach().to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

// The upper triangle (i < j) of the rows' cosine similarity matrix.
at::Tensor pairwise_cosines(const at::Tensor& x) {
  const auto unit = x / x.norm(2, 1, true).clamp_min(1e-12);
  const auto n = x.size(0);
  const auto upper = at::triu_indices(n, n, 1);
  return unit.mm(unit.t()).index({upper[0], upper[1]});
}

}  // namespace

double spearman(const at::Tensor& a, const at::Tensor& b) {
  SHRINK_CHECK(a.dim() == 1 && b.dim() == 1 && a.numel() == b.numel(),
               "spearman needs two 1-D tensors of equal length, got ", a.sizes(), " and ", b.sizes());
  SHRINK_CHECK(a.numel() >= 2, "spearman needs at least 2 values, got ", a.numel());
  const auto ra = average_ranks(to_vector(a)), rb = average_ranks(to_vector(b));
  const double mean = 0.5 * static_cast<double>(ra.size() + 1);  // of ranks 1..n, ties or not
  double cov = 0, va = 0, vb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    cov += (ra[i] - mean) * (rb[i] - mean);
    va += (ra[i] - mean) * (ra[i] - mean);
    vb += (rb[i] - mean) * (rb[i] - mean);
  }
  SHRINK_CHECK(va > 0 && vb > 0, "spearman is undefined when ", (va > 0 ? "the second" : "the first"),
               " input is constant");
  return cov / std::sqrt(va * vb);
}

EmbeddingFidelity embedding_fidelity(const at::Tensor& embeddings, const at::Tensor& reference) {
  SHRINK_CHECK(embeddings.dim() == 2 && embeddings.sizes() == reference.sizes(),
               "embedding fidelity needs two [N, D] tensors of one shape, got ", embeddings.sizes(), " and ",
               reference.sizes());
  SHRINK_CHECK(embeddings.size(0) >= 3, "embedding fidelity needs at least 3 samples, got ", embeddings.size(0));
  const auto e = embeddings.detach().to(at::kCPU, at::kDouble), r = reference.detach().to(at::kCPU, at::kDouble);
  auto cosines = to_vector(at::cosine_similarity(e, r, 1, 1e-12));
  std::sort(cosines.begin(), cosines.end());
  EmbeddingFidelity f;
  f.samples = e.size(0);
  for (double c : cosines) f.mean_cosine += c;
  f.mean_cosine /= static_cast<double>(cosines.size());
  const double at5 = 0.05 * static_cast<double>(cosines.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(at5));
  const auto hi = std::min(lo + 1, cosines.size() - 1);
  f.p5_cosine = cosines[lo] + (at5 - static_cast<double>(lo)) * (cosines[hi] - cosines[lo]);
  f.min_cosine = cosines.front();
  f.spearman = spearman(pairwise_cosines(e), pairwise_cosines(r));
  return f;
}

}  // namespace shrink::train
