// Batch loader: coverage, seeded order and batch shapes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "data/loader.h"
#include "data/synthetic.h"

using namespace shrink::data;

namespace {

Dataset numbered(int64_t n) {
  Dataset d;
  d.inputs = torch::arange(n, torch::kFloat).unsqueeze(1);
  d.targets = torch::arange(n, torch::kLong) % 3;
  return d;
}

std::vector<float> epoch_order(BatchLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<float> seen;
  for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
    const auto b = loader.batch(i);
    for (int64_t j = 0; j < b.inputs.size(0); ++j) seen.push_back(b.inputs[j][0].item<float>());
  }
  return seen;
}

}  // namespace

TEST(BatchLoader, VisitsEverySampleOncePerEpoch) {
  BatchLoader loader(numbered(103), LoaderOptions().batch_size(10).seed(1));
  auto seen = epoch_order(loader, 0);
  ASSERT_EQ(seen.size(), 103u);
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i < 103; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], static_cast<float>(i));
}

TEST(BatchLoader, SameSeedAndEpochGiveTheSameOrder) {
  BatchLoader a(numbered(50), LoaderOptions().batch_size(7).seed(9));
  BatchLoader b(numbered(50), LoaderOptions().batch_size(7).seed(9));
  EXPECT_EQ(epoch_order(a, 3), epoch_order(b, 3));
}

TEST(BatchLoader, EpochsAndSeedsChangeTheOrder) {
  BatchLoader a(numbered(50), LoaderOptions().batch_size(7).seed(9));
  BatchLoader b(numbered(50), LoaderOptions().batch_size(7).seed(10));
  EXPECT_NE(epoch_order(a, 0), epoch_order(a, 1));
  EXPECT_NE(epoch_order(a, 0), epoch_order(b, 0));
}

TEST(BatchLoader, UnshuffledKeepsNaturalOrderAndPartialLastBatch) {
  BatchLoader loader(numbered(10), LoaderOptions().batch_size(4).shuffle(false));
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  EXPECT_EQ(loader.batch(2).inputs.size(0), 2);
  const auto order = epoch_order(loader, 0);
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], static_cast<float>(i));
}

TEST(BatchLoader, DropLastDropsThePartialBatch) {
  BatchLoader loader(numbered(10), LoaderOptions().batch_size(4).drop_last(true));
  EXPECT_EQ(loader.batches_per_epoch(), 2);
}

TEST(BatchLoader, TargetsStayPairedWithInputs) {
  BatchLoader loader(numbered(40), LoaderOptions().batch_size(8).seed(2));
  loader.start_epoch(0);
  const auto b = loader.batch(1);
  EXPECT_TRUE(torch::equal(b.targets, b.inputs.squeeze(1).to(torch::kLong) % 3));
}

namespace {

// 200 sentences, sentence i holding 1 + i % 40 tokens (id 7 + i) then padding: a sentence's id
// names it and its length.
Dataset sentences() {
  Dataset d;
  d.inputs = torch::zeros({200, 40}, torch::kLong);
  for (int64_t i = 0; i < 200; ++i) d.inputs[i].narrow(0, 0, 1 + i % 40).fill_(7 + i);
  return d;
}

// Each batch's longest sentence minus its shortest, summed over the epoch.
int64_t length_spread(BatchLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  int64_t spread = 0;
  for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
    const auto lengths = loader.batch(i).inputs.ne(0).sum(1);
    spread += lengths.max().item<int64_t>() - lengths.min().item<int64_t>();
  }
  return spread;
}

}  // namespace

TEST(BatchLoader, LengthBucketsGroupSentencesOfLikeLengthAndStillVisitEachOnce) {
  BatchLoader plain(sentences(), LoaderOptions().batch_size(8).seed(3));
  BatchLoader bucketed(sentences(), LoaderOptions().batch_size(8).seed(3).length_buckets(5));
  // Sorted windows of 40 sentences: a batch's lengths differ by a few tokens, not by most of 40.
  EXPECT_LT(length_spread(bucketed, 0), length_spread(plain, 0) / 4);
  bucketed.start_epoch(1);
  std::vector<int64_t> seen;
  for (int64_t i = 0; i < bucketed.batches_per_epoch(); ++i) {
    const auto b = bucketed.batch(i);
    for (int64_t j = 0; j < b.inputs.size(0); ++j) {
      EXPECT_EQ(b.inputs[j][0].item<int64_t>(), 7 + b.host_indices[j].item<int64_t>());  // indices stay paired
      seen.push_back(b.host_indices[j].item<int64_t>());
    }
  }
  std::sort(seen.begin(), seen.end());
  ASSERT_EQ(seen.size(), 200u);
  for (int64_t i = 0; i < 200; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], i);
}

TEST(BatchLoader, LengthBucketsAreSeededAndNeedTokenIds) {
  BatchLoader a(sentences(), LoaderOptions().batch_size(8).seed(3).length_buckets(5));
  BatchLoader b(sentences(), LoaderOptions().batch_size(8).seed(3).length_buckets(5));
  a.start_epoch(2);
  b.start_epoch(2);
  for (int64_t i = 0; i < a.batches_per_epoch(); ++i) EXPECT_TRUE(torch::equal(a.batch(i).inputs, b.batch(i).inputs));
  try {
    BatchLoader images(numbered(10), LoaderOptions().length_buckets(2));
    FAIL() << "length_buckets accepted float samples";
  } catch (const shrink::core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("length_buckets needs token ids [N, L]"), std::string::npos) << e.what();
  }
}

TEST(SyntheticData, IsDeterministicUnderASeed) {
  const auto o = SyntheticOptions().samples(64).classes(3).shape({2, 4}).seed(5);
  const auto a = make_synthetic(o), b = make_synthetic(o);
  EXPECT_TRUE(torch::equal(a.inputs, b.inputs));
  EXPECT_TRUE(torch::equal(a.targets, b.targets));
  EXPECT_EQ(a.inputs.sizes(), torch::IntArrayRef({64, 2, 4}));
}

TEST(SyntheticData, StreamsShareClassPrototypesButNotSamples) {
  const auto o = SyntheticOptions().samples(512).classes(2).shape({16}).noise(0.01).seed(5);
  const auto train = make_synthetic(o, 0), test = make_synthetic(o, 1);
  EXPECT_FALSE(torch::equal(train.inputs, test.inputs));
  // With tiny noise, a class's mean is its prototype in both streams.
  const auto m0 = train.inputs.index({train.targets == 0}).mean(0);
  const auto t0 = test.inputs.index({test.targets == 0}).mean(0);
  EXPECT_TRUE(torch::allclose(m0, t0, 0, 0.01));
}

TEST(ValidationSplit, HoldsOutTheRequestedFractionDisjointly) {
  const auto split = split_validation(numbered(100), 0.2, 4);
  EXPECT_EQ(split.val.size(), 20);
  EXPECT_EQ(split.train.size(), 80);
  const auto all = torch::cat({split.train.inputs, split.val.inputs}).squeeze(1);
  EXPECT_TRUE(torch::equal(std::get<0>(all.sort()), torch::arange(100, torch::kFloat)));
}

TEST(Samples, Uint8ImagesAreScaledNormalisedAndGainAChannel) {
  const auto raw = torch::tensor({0, 255, 51, 102}, torch::kByte).view({1, 2, 2});
  const auto x = to_float_samples(raw, {0.2, 0.5});
  EXPECT_EQ(x.sizes(), torch::IntArrayRef({1, 1, 2, 2}));
  EXPECT_TRUE(torch::allclose(x.flatten(), torch::tensor({-0.4f, 1.6f, 0.0f, 0.4f})));
}

TEST(Samples, Float32FeaturesAreNormalisedWithoutScaling) {
  const auto raw = torch::tensor({{1.0f, 3.0f}});
  const auto x = to_float_samples(raw, {1.0, 2.0});
  EXPECT_EQ(x.sizes(), torch::IntArrayRef({1, 2}));
  EXPECT_TRUE(torch::equal(x, torch::tensor({{0.0f, 1.0f}})));
  EXPECT_TRUE(torch::equal(raw, torch::tensor({{1.0f, 3.0f}})));  // the input is left untouched
}

TEST(BatchLoader, ShardsOfABatchMakeUpTheOneProcessBatch) {
  BatchLoader whole(numbered(23), LoaderOptions().batch_size(8).seed(4));
  std::vector<BatchLoader> shards;
  for (int64_t s = 0; s < 3; ++s)
    shards.emplace_back(numbered(23), LoaderOptions().batch_size(8).seed(4).shard(s).shards(3));
  whole.start_epoch(1);
  for (auto& l : shards) l.start_epoch(1);
  ASSERT_EQ(shards[0].batches_per_epoch(), whole.batches_per_epoch());
  for (int64_t i = 0; i < whole.batches_per_epoch(); ++i) {
    std::vector<at::Tensor> parts;
    for (auto& l : shards) parts.push_back(l.batch(i).inputs);
    EXPECT_TRUE(torch::equal(torch::cat(parts), whole.batch(i).inputs)) << "batch " << i;
    EXPECT_EQ(shards[0].batch_samples(i), whole.batch(i).inputs.size(0));
  }
  // The last batch (7 samples) splits 2, 2, 3.
  EXPECT_EQ(shards[0].batch(2).inputs.size(0), 2);
  EXPECT_EQ(shards[2].batch(2).inputs.size(0), 3);
}

TEST(BatchLoader, AShardOutsideItsCountIsRefused) {
  try {
    BatchLoader(numbered(10), LoaderOptions().shard(2).shards(2));
    FAIL() << "expected an error";
  } catch (const shrink::core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard must be in [0, shards) with shards >= 1, got shard 2 of 2"),
              std::string::npos)
        << e.what();
  }
}
