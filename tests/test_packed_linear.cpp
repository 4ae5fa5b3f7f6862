// Packed fp32 Linear: the packing, the reference against LibTorch's Linear, every fast path against
// the reference bit for bit (they sum in its order), threads, and bad arguments.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/threads.h"
#include "helpers.h"
#include "runtime/packed_linear.h"

using namespace shrink::runtime;
using shrink::testing::contains;

namespace {

// LibTorch's GEMM sums in other orders (blocks, vector lanes): relative to the largest output.
constexpr double kMaxPackedError = 1e-5;

torch::Tensor run(const PackedLinearWeights& w, const torch::Tensor& x, bool relu, VectorPath path) {
  auto y = torch::full({x.size(0), w.rows}, 7.0f);
  packed_linear(w, x.data_ptr<float>(), x.size(0), relu, y.data_ptr<float>(), path);
  return y;
}

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / std::max(1.0, b.abs().max().item<double>())).item<double>();
}

// Equal bit for bit: NaN payloads and the sign of zero included.
bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && std::memcmp(a.contiguous().data_ptr<float>(), b.contiguous().data_ptr<float>(),
                                               static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

std::vector<VectorPath> fast_paths() {
  std::vector<VectorPath> out;
  for (const auto p : {VectorPath::kAvx2, VectorPath::kAvx512}) {
    if (vector_path_available(p)) out.push_back(p);
  }
  return out;
}

}  // namespace

TEST(PackedLinear, PanelsHoldEachInputFeaturesWeightsForThirtyTwoOutputsZeroPadded) {
  const auto w = torch::arange(33 * 2, torch::kFloat).view({33, 2});
  const auto p = pack_linear(w, torch::Tensor());
  ASSERT_EQ(p.panel_count(), 2);
  ASSERT_EQ(p.panels.size(), 2u * 2 * 32);
  EXPECT_EQ(p.panels[0 * 32 + 5], w[5][0].item<float>());
  EXPECT_EQ(p.panels[1 * 32 + 5], w[5][1].item<float>());
  EXPECT_EQ(p.panels[2 * 32 + 0 * 32 + 0], w[32][0].item<float>());
  EXPECT_EQ(p.panels[2 * 32 + 1 * 32 + 0], w[32][1].item<float>());
  EXPECT_EQ(p.panels[2 * 32 + 1 * 32 + 1], 0.0f);
  EXPECT_EQ(p.bias, std::vector<float>(64, 0.0f));
}

TEST(PackedLinear, ReferenceEqualsLibTorchsLinearWithBiasAndRelu) {
  torch::manual_seed(1);
  for (const int64_t rows : {1, 31, 33, 70}) {
    for (const int64_t cols : {1, 5, 130}) {
      const auto w = torch::randn({rows, cols}), b = torch::randn({rows}), x = torch::randn({6, cols});
      const auto p = pack_linear(w, b);
      EXPECT_LT(relative_error(run(p, x, false, VectorPath::kReference), torch::linear(x, w, b)), kMaxPackedError)
          << rows << "x" << cols;
      EXPECT_LT(relative_error(run(p, x, true, VectorPath::kReference), torch::relu(torch::linear(x, w, b))),
                kMaxPackedError)
          << rows << "x" << cols;
    }
  }
}

// Batches through every tile height and its tails (1–12 rows AVX-512, 1–6 AVX2), outputs that leave
// one to five panels and a part-filled last one, with and without ReLU.
TEST(PackedLinear, EveryPathGivesTheReferencesBitsForEveryTileShape) {
  const auto paths = fast_paths();
  if (paths.empty()) GTEST_SKIP() << "this CPU (or its SHRINK_MAX_CPU_ISA cap) has no AVX2 or AVX-512";
  torch::manual_seed(2);
  for (const int64_t rows : {1, 17, 32, 33, 100, 129, 160}) {
    const auto p = pack_linear(torch::randn({rows, 37}), torch::randn({rows}));
    for (const int64_t batch : {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 25, 64}) {
      const auto x = torch::randn({batch, 37});
      for (const bool relu : {false, true}) {
        const auto expected = run(p, x, relu, VectorPath::kReference);
        for (const auto path : paths) {
          EXPECT_TRUE(same_bits(run(p, x, relu, path), expected))
              << path_name(path) << " rows " << rows << " batch " << batch << " relu " << relu;
        }
      }
    }
  }
}

// 12,000 input features: a chunk of rows (1 MiB of input) holds 21, rounded down to whole tiles
// (12 AVX-512, 18 AVX2), so 50 rows make chunks and a short last one.
TEST(PackedLinear, ABatchOfSeveralRowChunksGivesTheReferencesBits) {
  const auto paths = fast_paths();
  if (paths.empty()) GTEST_SKIP() << "this CPU (or its SHRINK_MAX_CPU_ISA cap) has no AVX2 or AVX-512";
  torch::manual_seed(5);
  const auto p = pack_linear(torch::randn({70, 12000}), torch::randn({70}));
  const auto x = torch::randn({50, 12000});
  const auto expected = run(p, x, true, VectorPath::kReference);
  for (const auto path : paths) EXPECT_TRUE(same_bits(run(p, x, true, path), expected)) << path_name(path);
}

TEST(PackedLinear, ReluPassesNaNAsAtReluDoesAndClampsNegatives) {
  const auto p = pack_linear(torch::tensor({{1.0f}, {-1.0f}}), torch::Tensor());
  const auto x = torch::tensor({{std::numeric_limits<float>::quiet_NaN()}, {2.0f}});
  for (const auto path : vector_paths()) {
    const auto y = run(p, x, true, path);
    EXPECT_TRUE(torch::isnan(y[0]).all().item<bool>()) << path_name(path) << ": " << y;
    EXPECT_TRUE(torch::equal(y[1], torch::tensor({2.0f, 0.0f}))) << path_name(path) << ": " << y;
  }
}

TEST(PackedLinear, TwoThreadsGiveOneThreadsBits) {
  const auto paths = fast_paths();
  if (paths.empty()) GTEST_SKIP() << "this CPU (or its SHRINK_MAX_CPU_ISA cap) has no AVX2 or AVX-512";
  torch::manual_seed(3);
  const auto p = pack_linear(torch::randn({300, 784}), torch::randn({300}));
  const auto x = torch::randn({64, 784});
  const int before = at::get_num_threads();
  for (const auto path : paths) {
    at::set_num_threads(1);
    const auto one = run(p, x, true, path);
    at::set_num_threads(2);
    EXPECT_TRUE(same_bits(run(p, x, true, path), one)) << path_name(path);
  }
  at::set_num_threads(before);
}

TEST(PackedLinear, TheTensorFormTakesAnyLayoutAndGivesBatchByRows) {
  torch::manual_seed(4);
  const auto w = torch::randn({40, 9}), b = torch::randn({40});
  const auto x = torch::randn({9, 5}).t();  // not contiguous
  const auto y = packed_linear(pack_linear(w, b), x, false, best_vector_path());
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{5, 40}));
  EXPECT_LT(relative_error(y, torch::linear(x, w, b)), kMaxPackedError);
}

TEST(PackedLinear, AnInputOfTheWrongWidthIsAnErrorNamingItsShape) {
  const auto p = pack_linear(torch::randn({4, 8}), torch::Tensor());
  try {
    packed_linear(p, torch::randn({2, 7}), false, VectorPath::kReference);
    FAIL() << "no error";
  } catch (const shrink::core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "input must be [batch, 8], got shape [2, 7]")) << e.what();
  }
}

TEST(PackedLinear, ABiasOfTheWrongLengthIsAnErrorNamingBoth) {
  try {
    pack_linear(torch::randn({4, 8}), torch::randn({5}));
    FAIL() << "no error";
  } catch (const shrink::core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "bias must have 4 values, got shape [5]")) << e.what();
  }
}
