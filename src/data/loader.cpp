// Batch slicing: contiguous narrow() in natural order, index_select on a permutation when shuffled.
#include "data/loader.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"

namespace shrink::data {

BatchLoader::BatchLoader(Dataset data, LoaderOptions options) : data_(std::move(data)), options_(options) {
  SHRINK_CHECK(options_.batch_size() > 0, "batch_size must be > 0, got ", options_.batch_size());
  SHRINK_CHECK(data_.size() > 0, "cannot load batches from an empty dataset");
  validate(options_.augment());
  if (options_.augment().enabled() && data_.inputs.dim() != 4) {
    throw core::UsageError(
        core::cat("augment needs image samples [C, H, W]; this data's samples are ", data_.inputs.sizes().slice(1)));
  }
}

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = data_.size(), b = options_.batch_size();
  if (options_.drop_last()) return std::max<int64_t>(n / b, n < b ? 1 : 0);
  return (n + b - 1) / b;
}

void BatchLoader::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  if (!options_.shuffle()) return;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(options_.seed(), static_cast<uint64_t>(epoch)));
  host_order_ = at::randperm(data_.size(), gen, at::TensorOptions().dtype(at::kLong));
  order_ = host_order_.to(data_.inputs.device());
}

Batch BatchLoader::batch(int64_t index) const {
  SHRINK_CHECK(index >= 0 && index < batches_per_epoch(), "batch index ", index, " out of range [0, ",
               batches_per_epoch(), ")");
  const int64_t b = options_.batch_size();
  const int64_t start = index * b;
  const int64_t len = std::min(b, data_.size() - start);
  Batch batch;
  if (!order_.defined()) {
    const auto host = at::arange(start, start + len, at::TensorOptions().dtype(at::kLong));
    batch = {data_.inputs.narrow(0, start, len), data_.labelled() ? data_.targets.narrow(0, start, len) : at::Tensor(),
             host.to(data_.inputs.device()), host};
  } else {
    const auto idx = order_.narrow(0, start, len);
    batch = {data_.inputs.index_select(0, idx), data_.labelled() ? data_.targets.index_select(0, idx) : at::Tensor(),
             idx, host_order_.narrow(0, start, len)};
  }
  if (options_.augment().enabled()) {
    // Its own stream, apart from the shuffle's, so turning augmentation on keeps the batch order.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(
        mix_seed(mix_seed(options_.seed(), 0x61756721), static_cast<uint64_t>(epoch_)), static_cast<uint64_t>(index)));
    batch.inputs = augment_batch(batch.inputs, options_.augment(), gen);
    batch.augmented = true;
  }
  return batch;
}

}  // namespace shrink::data
