// Batched loader over an in-memory Dataset: one seeded permutation per epoch, index_select per batch.
#pragma once

#include <torch/arg.h>

#include "data/augment.h"
#include "data/dataset.h"

namespace shrink::data {

struct LoaderOptions {
  TORCH_ARG(int64_t, batch_size) = 128;
  TORCH_ARG(bool, shuffle) = true;
  // Drops a final partial batch (training); evaluation keeps it.
  TORCH_ARG(bool, drop_last) = false;
  TORCH_ARG(uint64_t, seed) = 0;
  // Random flips and shifts of every batch (training only); drawn from (seed, epoch, batch).
  TORCH_ARG(AugmentOptions, augment) = {};
  // Token ids ([N, L], 0 = padding): after each epoch's shuffle, every window of this many batches
  // is ordered by sentence length and cut into batches, and the full batches are shuffled again —
  // so a batch holds sentences of like length and a model that skips padding (bert) skips most of
  // it. 0 = off. Needs shuffle.
  TORCH_ARG(int64_t, length_buckets) = 0;
  // Data-parallel training: every rank draws the same batches and takes the `shard`-th of
  // `shards` contiguous parts of each, so the ranks' parts of a step make up the one-process batch.
  TORCH_ARG(int64_t, shard) = 0;
  TORCH_ARG(int64_t, shards) = 1;
};

struct Batch {
  at::Tensor inputs;
  at::Tensor targets;
  at::Tensor indices;       // int64: the samples' positions in the dataset (what per-sample caches key on)
  at::Tensor host_indices;  // the same on the CPU, readable without waiting for a GPU
  bool augmented = false;   // inputs are random variants of the samples, not the samples themselves
};

class BatchLoader {
 public:
  BatchLoader(Dataset data, LoaderOptions options);

  int64_t batches_per_epoch() const;
  // Samples in batch `index` over all shards (this shard's part may be smaller, even empty).
  int64_t batch_samples(int64_t index) const;
  // Fixes the order for `epoch`: the same (seed, epoch) always gives the same order, which is
  // what lets a resumed run replay the exact batches of an uninterrupted one.
  void start_epoch(int64_t epoch);
  Batch batch(int64_t index) const;
  const Dataset& dataset() const { return data_; }
  const LoaderOptions& options() const { return options_; }

 private:
  Dataset data_;
  LoaderOptions options_;
  at::Tensor order_;       // int64 on the data's device; undefined = natural order
  at::Tensor host_order_;  // the same on the CPU
  int64_t epoch_ = 0;
  at::Tensor lengths_;  // int64 [N] on the CPU: each sample's length, with length_buckets

  void bucket_by_length(at::Generator& gen);
};

}  // namespace shrink::data
