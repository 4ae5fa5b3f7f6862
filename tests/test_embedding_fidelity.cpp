// Embedding fidelity without labels: per-sample cosines, their 5th percentile, and Spearman's rank
// correlation of pairwise similarities, against values worked out by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "train/embedding_fidelity.h"

using namespace shrink;

namespace {

// Unit vectors in the plane at the given angles: their pairwise cosines are cos(θi − θj).
torch::Tensor at_angles(const std::vector<double>& angles) {
  auto t = torch::empty({static_cast<int64_t>(angles.size()), 2}, torch::kDouble);
  for (size_t i = 0; i < angles.size(); ++i) {
    t[i][0] = std::cos(angles[i]);
    t[i][1] = std::sin(angles[i]);
  }
  return t;
}

template <class F>
std::string fidelity_error_of(F f) {
  try {
    f();
  } catch (const core::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(EmbeddingFidelity, SpearmanGivesTiedValuesTheirAverageRank) {
  // Ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: covariance 4.5, variances 4.5 and 5.
  const double r = train::spearman(torch::tensor({1.0, 2.0, 2.0, 3.0}), torch::tensor({1.0, 3.0, 2.0, 4.0}));
  EXPECT_NEAR(r, 4.5 / std::sqrt(4.5 * 5.0), 1e-12);
}

TEST(EmbeddingFidelity, SpearmanIsOneForAMonotoneMapAndMinusOneForAReversal) {
  const auto x = torch::randn({50}, torch::TensorOptions().dtype(torch::kDouble));
  EXPECT_NEAR(train::spearman(x, x.exp()), 1.0, 1e-12);
  EXPECT_NEAR(train::spearman(x, -x * 3), -1.0, 1e-12);
}

TEST(EmbeddingFidelity, SpearmanOfAConstantInputIsAnErrorNamingIt) {
  const auto what = fidelity_error_of([] { train::spearman(torch::ones({4}), torch::arange(4)); });
  EXPECT_NE(what.find("the first input is constant"), std::string::npos) << what;
}

TEST(EmbeddingFidelity, IdenticalDirectionsScoreOneWhateverTheirLength) {
  torch::manual_seed(3);
  const auto e = torch::randn({20, 8});
  const auto f = train::embedding_fidelity(e * torch::rand({20, 1}).add(0.5), e);
  EXPECT_EQ(f.samples, 20);
  EXPECT_NEAR(f.mean_cosine, 1.0, 1e-12);
  EXPECT_NEAR(f.min_cosine, 1.0, 1e-12);
  EXPECT_NEAR(f.spearman, 1.0, 1e-12);
}

TEST(EmbeddingFidelity, CosinesAreSummarisedByMeanInterpolatedFifthPercentileAndMinimum) {
  // n samples whose cosines to their reference are 0, 1/(n − 1), ..., 1 (each turned away from its
  // own reference direction by acos of that).
  const auto fidelity = [](int n) {
    std::vector<double> reference, turned;
    for (int i = 0; i < n; ++i) {
      reference.push_back(0.01 * i);
      turned.push_back(0.01 * i + std::acos(i / double(n - 1)));
    }
    return train::embedding_fidelity(at_angles(turned), at_angles(reference));
  };
  // 21 samples: the 5th percentile sits at position 0.05 × 20 = 1 of the sorted cosines.
  const auto f = fidelity(21);
  EXPECT_NEAR(f.mean_cosine, 0.5, 1e-12);
  EXPECT_NEAR(f.p5_cosine, 0.05, 1e-12);
  EXPECT_NEAR(f.min_cosine, 0.0, 1e-12);
  // 11 samples: position 0.5, halfway between the two smallest cosines 0 and 0.1.
  EXPECT_NEAR(fidelity(11).p5_cosine, 0.05, 1e-12);
}

TEST(EmbeddingFidelity, SpearmanComparesHowThePairsAreOrderedNotTheSamplesThemselves) {
  // Rotating every sample by one angle changes every per-sample cosine but no pairwise similarity.
  const std::vector<double> angles = {0.0, 0.3, 0.5, 1.2, 2.0};
  std::vector<double> turned;
  for (double a : angles) turned.push_back(a + 0.7);
  const auto f = train::embedding_fidelity(at_angles(turned), at_angles(angles));
  EXPECT_NEAR(f.mean_cosine, std::cos(0.7), 1e-12);
  EXPECT_NEAR(f.spearman, 1.0, 1e-12);
  // Squeezing the angles towards 0 keeps their order; moving sample 1 past sample 2 does not.
  std::vector<double> swapped = angles;
  std::swap(swapped[1], swapped[3]);
  EXPECT_LT(train::embedding_fidelity(at_angles(swapped), at_angles(angles)).spearman, 0.9);
}

TEST(EmbeddingFidelity, MismatchedShapesAreAnErrorNamingBoth) {
  const auto what = fidelity_error_of([] { train::embedding_fidelity(torch::ones({5, 4}), torch::ones({5, 3})); });
  EXPECT_NE(what.find("[5, 4] and [5, 3]"), std::string::npos) << what;
}
