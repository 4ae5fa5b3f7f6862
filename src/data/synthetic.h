// Seeded synthetic classification data that small models learn in seconds: for tests and benches.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <vector>

#include "config/options_spec.h"
#include "data/dataset.h"

namespace shrink::data {

struct SyntheticOptions {
  TORCH_ARG(int64_t, samples) = 2048;      // the training stream's size
  TORCH_ARG(int64_t, test_samples) = 512;  // the test stream's size (recipes' synthetic data)
  TORCH_ARG(int64_t, classes) = 4;
  TORCH_ARG(std::vector<int64_t>, shape) = std::vector<int64_t>{1, 8, 8};
  // Standard deviation of the per-sample noise around each class prototype.
  TORCH_ARG(double, noise) = 1.0;
  TORCH_ARG(uint64_t, seed) = 0;
};

// The recipe keys of SyntheticOptions (`data.synthetic:`); the seed is the recipe's.
const config::OptionsSpec<SyntheticOptions>& synthetic_spec();

// Each class has a random prototype; a sample is its class prototype plus Gaussian noise.
// `stream` picks an independent draw of samples around the same prototypes (train vs test).
Dataset make_synthetic(const SyntheticOptions& options, uint64_t stream = 0);

}  // namespace shrink::data
