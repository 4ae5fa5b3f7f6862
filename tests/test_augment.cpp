// Augmentation: the batched path equals the per-sample reference, draws are seeded, and the
// loader marks augmented batches (so nothing caches per-sample results of them).
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "data/augment.h"
#include "data/loader.h"

using namespace shrink;
using namespace shrink::data;

namespace {

at::Generator generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

Dataset images(int64_t n) {
  torch::manual_seed(3);
  return {torch::rand({n, 2, 6, 5}), torch::arange(n, torch::kLong) % 3, {}};
}

}  // namespace

TEST(Augment, ASampleShiftsWithZerosWhereNothingMovedIn) {
  const auto img = torch::arange(1, 10, torch::kFloat).view({1, 3, 3});  // rows 1 2 3 / 4 5 6 / 7 8 9
  const auto down_right = augment_sample(img, false, 1, 1);
  EXPECT_TRUE(torch::equal(down_right, torch::tensor({0.f, 0.f, 0.f, 0.f, 1.f, 2.f, 0.f, 4.f, 5.f}).view({1, 3, 3})));
  const auto mirrored_left = augment_sample(img, true, 0, -1);  // mirror: 3 2 1 / 6 5 4 / 9 8 7, then left
  EXPECT_TRUE(
      torch::equal(mirrored_left, torch::tensor({2.f, 1.f, 0.f, 5.f, 4.f, 0.f, 8.f, 7.f, 0.f}).view({1, 3, 3})));
}

TEST(Augment, TheBatchedPathEqualsTheReferenceForEverySample) {
  const auto x = images(64).inputs;
  const auto o = AugmentOptions().hflip(true).shift(2);
  const auto out = augment_batch(x, o, generator(11));
  // The same draws, in the documented order: flips, then dy, then dx.
  auto g = generator(11);
  const auto flip = torch::randint(0, 2, {64}, g, torch::kLong);
  const auto dy = torch::randint(-2, 3, {64}, g, torch::kLong), dx = torch::randint(-2, 3, {64}, g, torch::kLong);
  for (int64_t i = 0; i < 64; ++i) {
    const auto ref = augment_sample(x[i], flip[i].item<int64_t>() == 1, dy[i].item<int64_t>(), dx[i].item<int64_t>());
    EXPECT_TRUE(torch::equal(out[i], ref)) << "sample " << i;
  }
  EXPECT_FALSE(torch::equal(out, x));
}

TEST(Augment, TheLoaderAugmentsTheSameWayForTheSameSeedEpochAndBatch) {
  const auto o = LoaderOptions().batch_size(8).seed(5).augment(AugmentOptions().hflip(true).shift(1));
  BatchLoader a(images(40), o), b(images(40), o);
  a.start_epoch(2), b.start_epoch(2);
  EXPECT_TRUE(torch::equal(a.batch(3).inputs, b.batch(3).inputs));
  EXPECT_TRUE(a.batch(3).augmented);
  b.start_epoch(3);
  EXPECT_FALSE(torch::equal(a.batch(3).inputs, b.batch(3).inputs));
}

TEST(Augment, TurningItOnKeepsTheBatchOrder) {
  BatchLoader plain(images(40), LoaderOptions().batch_size(8).seed(5));
  BatchLoader augmented(images(40), LoaderOptions().batch_size(8).seed(5).augment(AugmentOptions().shift(2)));
  plain.start_epoch(1), augmented.start_epoch(1);
  EXPECT_TRUE(torch::equal(plain.batch(2).indices, augmented.batch(2).indices));
  EXPECT_FALSE(plain.batch(2).augmented);
}

TEST(Augment, NonImageDataIsRefusedWithItsShape) {
  Dataset flat{torch::rand({10, 7}), torch::zeros({10}, torch::kLong), {}};
  try {
    BatchLoader loader(flat, LoaderOptions().augment(AugmentOptions().hflip(true)));
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("augment needs image samples [C, H, W]; this data's samples are [7]"),
              std::string::npos)
        << e.what();
  }
}
