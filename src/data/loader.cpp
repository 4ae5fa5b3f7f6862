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
  SHRINK_CHECK(options_.shards() >= 1 && options_.shard() >= 0 && options_.shard() < options_.shards(),
               "shard must be in [0, shards) with shards >= 1, got shard ", options_.shard(), " of ",
               options_.shards());
  SHRINK_CHECK(options_.length_buckets() >= 0, "length_buckets must be >= 0, got ", options_.length_buckets());
  if (options_.length_buckets() > 0) {
    if (data_.inputs.scalar_type() != at::kLong || data_.inputs.dim() != 2) {
      throw core::UsageError(core::cat("length_buckets needs token ids [N, L]; this data's samples are ",
                                       data_.inputs.scalar_type(), " ", data_.inputs.sizes().slice(1)));
    }
    SHRINK_CHECK(options_.shuffle(), "length_buckets needs shuffle");
    // A sentence's length: up to its last token (ids after it are padding, 0).
    const auto positions = at::arange(1, data_.inputs.size(1) + 1, at::TensorOptions().dtype(at::kLong));
    lengths_ = (data_.inputs.ne(0).to(at::kCPU) * positions).amax(1);
  }
}

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = data_.size(), b = options_.batch_size();
  if (options_.drop_last()) return std::max<int64_t>(n / b, n < b ? 1 : 0);
  return (n + b - 1) / b;
}

int64_t BatchLoader::batch_samples(int64_t index) const {
  SHRINK_CHECK(index >= 0 && index < batches_per_epoch(), "batch index ", index, " out of range [0, ",
               batches_per_epoch(), ")");
  return std::min(options_.batch_size(), data_.size() - index * options_.batch_size());
}

void BatchLoader::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  if (!options_.shuffle()) return;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(options_.seed(), static_cast<uint64_t>(epoch)));
  host_order_ = at::randperm(data_.size(), gen, at::TensorOptions().dtype(at::kLong));
  if (options_.length_buckets() > 0) bucket_by_length(gen);
  order_ = host_order_.to(data_.inputs.device());
}

void BatchLoader::bucket_by_length(at::Generator& gen) {
  const int64_t n = data_.size(), b = options_.batch_size(), window = b * options_.length_buckets();
  std::vector<at::Tensor> parts;
  for (int64_t start = 0; start < n; start += window) {
    const auto part = host_order_.narrow(0, start, std::min(window, n - start));
    // Stable: like lengths keep the shuffle's order, so the result depends on the seed alone.
    const auto by_length = std::get<1>(lengths_.index_select(0, part).sort(/*stable=*/true, 0, false));
    parts.push_back(part.index_select(0, by_length));
  }
  auto sorted = at::cat(parts);
  // The full batches in a random order; a final partial one stays last, where batch() cuts it.
  const int64_t full = n / b;
  const auto batches = at::randperm(full, gen, at::TensorOptions().dtype(at::kLong));
  const auto picked = sorted.narrow(0, 0, full * b).view({full, b}).index_select(0, batches).reshape({-1});
  host_order_ = at::cat({picked, sorted.narrow(0, full * b, n - full * b)});
}

Batch BatchLoader::batch(int64_t index) const {
  SHRINK_CHECK(index >= 0 && index < batches_per_epoch(), "batch index ", index, " out of range [0, ",
               batches_per_epoch(), ")");
  const int64_t all = batch_samples(index);
  // This shard's contiguous part: sizes differ by at most one sample.
  const int64_t from = all * options_.shard() / options_.shards();
  const int64_t start = index * options_.batch_size() + from;
  const int64_t len = all * (options_.shard() + 1) / options_.shards() - from;
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
    // Shards draw apart: the same stream would give each rank's k-th sample the same flip and shift.
    uint64_t seed = mix_seed(mix_seed(mix_seed(options_.seed(), 0x61756721), static_cast<uint64_t>(epoch_)),
                             static_cast<uint64_t>(index));
    if (options_.shards() > 1) seed = mix_seed(seed, static_cast<uint64_t>(options_.shard()));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    batch.inputs = augment_batch(batch.inputs, options_.augment(), gen);
    batch.augmented = true;
  }
  return batch;
}

}  // namespace shrink::data
