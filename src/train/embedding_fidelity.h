// How closely a model's embeddings follow a reference model's when there are no labels to score:
// each sample's cosine to its reference, and whether both rank pairs of samples alike.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace shrink::train {

struct EmbeddingFidelity {
  int64_t samples = 0;
  double mean_cosine = 0.0;  // of each sample's embedding with its reference embedding
  double p5_cosine = 0.0;    // 5th percentile, linearly interpolated (numpy's default)
  double min_cosine = 0.0;
  // Spearman's rank correlation between the N(N − 1)/2 pairwise cosine similarities of the
  // embeddings and those of the reference: 1 when every pair of samples is ordered alike.
  double spearman = 0.0;
};

// `embeddings` and `reference` are float [N, D], row i of each the same sample, N >= 3; neither
// needs unit length. Throws an Error naming the shapes when they differ.
EmbeddingFidelity embedding_fidelity(const at::Tensor& embeddings, const at::Tensor& reference);

// Spearman's rank correlation of two 1-D tensors of equal length (>= 2); tied values share their
// average rank, as scipy.stats.spearmanr has it. Throws an Error when either is constant.
double spearman(const at::Tensor& a, const at::Tensor& b);

}  // namespace shrink::train
