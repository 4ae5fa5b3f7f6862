// Dataset slicing, normalisation and the seeded validation split.
#include "data/dataset.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "core/error.h"

namespace shrink::data {

int64_t Dataset::num_classes() const {
  if (!class_names.empty()) return static_cast<int64_t>(class_names.size());
  return size() == 0 || !labelled() ? 0 : targets.max().item<int64_t>() + 1;
}

std::vector<int64_t> Dataset::sample_shape() const {
  auto s = inputs.sizes().vec();
  s.erase(s.begin());
  return s;
}

Dataset Dataset::select(const at::Tensor& index) const {
  const auto idx = index.to(inputs.device());
  return Dataset{inputs.index_select(0, idx), labelled() ? targets.index_select(0, idx) : at::Tensor(), class_names};
}

Dataset Dataset::head(int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  return Dataset{inputs.narrow(0, 0, n), labelled() ? targets.narrow(0, 0, n) : at::Tensor(), class_names};
}

Dataset Dataset::to(const c10::Device& device) const {
  return Dataset{inputs.to(device), labelled() ? targets.to(device) : at::Tensor(), class_names};
}

at::Tensor to_float_samples(const at::Tensor& raw, const Normalization& norm) {
  SHRINK_CHECK(raw.scalar_type() == at::kByte || raw.scalar_type() == at::kFloat,
               "expected uint8 or float32 samples, got ", raw.scalar_type());
  SHRINK_CHECK(raw.dim() >= 2 && raw.dim() <= 4, "expected samples of rank 2 to 4, got ", raw.dim());
  SHRINK_CHECK(norm.std > 0, "normalisation std must be > 0, got ", norm.std);
  // copy=true: to() of a float32 tensor would otherwise alias it, and the in-place ops below
  // would change the caller's data.
  auto x = (raw.dim() == 3 ? raw.unsqueeze(1) : raw).to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
  if (raw.scalar_type() == at::kByte) x.div_(255.0);
  return x.sub_(norm.mean).div_(norm.std).contiguous();
}

TrainValSplit split_validation(const Dataset& data, double fraction, uint64_t seed) {
  SHRINK_CHECK(fraction >= 0 && fraction < 1, "validation fraction must be in [0, 1), got ", fraction);
  const int64_t n = data.size();
  const auto n_val = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  if (n_val == 0) return {data, Dataset{}};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 0x5eed7a1));
  const auto perm = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong));
  // Sorting each side keeps the original sample order, which keeps the split cheap to reason about.
  const auto val_idx = std::get<0>(perm.narrow(0, 0, n_val).sort());
  const auto train_idx = std::get<0>(perm.narrow(0, n_val, n - n_val).sort());
  return {data.select(train_idx), data.select(val_idx)};
}

uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  // splitmix64 over the pair: adjacent inputs give unrelated outputs.
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) & 0x7fffffffffffffffULL;  // LibTorch seeds are taken as int64 in places
}

}  // namespace shrink::data
