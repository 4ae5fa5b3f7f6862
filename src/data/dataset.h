// In-memory datasets: the whole split held as tensors (samples, and labels when it has them),
// sliced without copies per sample.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::data {

struct Dataset {
  at::Tensor inputs;   // float32 [N, ...], already normalised; or int64 [N, L] token ids (text)
  at::Tensor targets;  // int64 [N], class indices; undefined when the samples have no labels
  std::vector<std::string> class_names;

  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  bool labelled() const { return targets.defined(); }
  // 0 without labels.
  int64_t num_classes() const;
  // Sample shape without the batch dimension, e.g. {1, 28, 28}.
  std::vector<int64_t> sample_shape() const;
  Dataset select(const at::Tensor& index) const;
  Dataset head(int64_t n) const;
  Dataset to(const c10::Device& device) const;
};

struct Normalization {
  double mean = 0.0;
  double std = 1.0;
};

// Raw samples → normalised float32. uint8 is first scaled to [0, 1]; float32 is taken as is.
// [N, D] stays flat, [N, H, W] gains a channel dimension, [N, C, H, W] is kept.
at::Tensor to_float_samples(const at::Tensor& raw, const Normalization& norm);

struct TrainValSplit {
  Dataset train;
  Dataset val;
};

// Holds out round(fraction × N) samples, chosen by a seeded permutation, as the validation set.
TrainValSplit split_validation(const Dataset& data, double fraction, uint64_t seed);

// Stateless 64-bit mixer: derives independent seeds (per epoch, per purpose) from one recipe seed.
uint64_t mix_seed(uint64_t seed, uint64_t stream);

}  // namespace shrink::data
