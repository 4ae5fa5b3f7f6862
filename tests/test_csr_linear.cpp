// CSR Linear kernel: structure, the reference against dense arithmetic, every fast path against the reference.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "runtime/csr_linear.h"

using namespace shrink::runtime;

namespace {

// fp32 sums in another order (vector lanes, FMA): relative to the largest output.
constexpr double kMaxCsrError = 1e-5;

torch::Tensor sparse_weight(int64_t rows, int64_t cols, double sparsity, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn({rows, cols}) * (torch::rand({rows, cols}) >= sparsity);
}

torch::Tensor run(const CsrWeights& w, const torch::Tensor& x, bool relu, VectorPath path) {
  auto y = torch::empty({x.size(0), w.rows});
  csr_linear(w, x.data_ptr<float>(), x.size(0), relu, y.data_ptr<float>(), path);
  return y;
}

double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / std::max(1.0, b.abs().max().item<double>())).item<double>();
}

}  // namespace

TEST(CsrLinear, StoresExactlyTheNonzerosRowByRow) {
  const auto w = torch::tensor({{0.f, 2.f, 0.f}, {0.f, 0.f, 0.f}, {-1.f, 0.f, 3.f}});
  const auto csr = csr_from_dense(w, torch::tensor({1.f, 2.f, 3.f}));
  EXPECT_EQ(csr.row_ptr, (std::vector<int32_t>{0, 1, 1, 3}));
  EXPECT_EQ(csr.col, (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(csr.values, (std::vector<float>{2.f, -1.f, 3.f}));
  EXPECT_NEAR(csr.sparsity(), 6.0 / 9.0, 1e-12);
}

TEST(CsrLinear, ReferenceEqualsDenseLinearWithBiasAndRelu) {
  const auto w = sparse_weight(37, 53, 0.8, 1);
  const auto b = torch::randn({37});
  const auto x = torch::randn({5, 53});
  const auto csr = csr_from_dense(w, b);
  EXPECT_LT(relative_error(run(csr, x, false, VectorPath::kReference), torch::linear(x, w, b)), kMaxCsrError);
  EXPECT_LT(relative_error(run(csr, x, true, VectorPath::kReference), torch::relu(torch::linear(x, w, b))),
            kMaxCsrError);
}

TEST(CsrLinear, AnEmptyRowGivesItsBias) {
  auto w = sparse_weight(4, 16, 0.5, 2);
  w[2].zero_();
  const auto csr = csr_from_dense(w, torch::full({4}, 0.25f));
  const auto y = run(csr, torch::randn({3, 16}), false, best_vector_path());
  EXPECT_TRUE(torch::equal(y.select(1, 2), torch::full({3}, 0.25f)));
}

TEST(CsrLinear, EveryPathMatchesTheReferenceOnFp32Weights) {
  for (const auto path : {VectorPath::kAvx2, VectorPath::kAvx512}) {
    if (!vector_path_available(path)) continue;
    for (const double sparsity : {0.5, 0.9, 0.99}) {
      const auto csr = csr_from_dense(sparse_weight(300, 784, sparsity, 3), torch::randn({300}));
      // Batch sizes across every branch: one sample, a few, vector tails, several blocks.
      for (const int64_t batch : {1, 3, 4, 9, 17, 64, 100}) {
        const auto x = torch::randn({batch, 784});
        for (const bool relu : {false, true}) {
          EXPECT_LT(relative_error(run(csr, x, relu, path), run(csr, x, relu, VectorPath::kReference)), kMaxCsrError)
              << path_name(path) << " sparsity " << sparsity << " batch " << batch << " relu " << relu;
        }
      }
    }
  }
}

TEST(CsrLinear, EveryPathMatchesTheReferenceOnInt8Weights) {
  torch::manual_seed(4);
  const auto q = (torch::randint(-127, 128, {100, 300}) * (torch::rand({100, 300}) > 0.9)).to(torch::kChar);
  std::vector<float> scales;
  for (int i = 0; i < 100; ++i) scales.push_back(0.001f * static_cast<float>(i + 1));
  const auto csr = csr_from_int8(q, scales, torch::randn({100}));
  const auto dense = q.to(torch::kFloat) * torch::tensor(scales).view({-1, 1});
  for (const int64_t batch : {1, 2, 8, 33}) {
    const auto x = torch::randn({batch, 300});
    const auto reference = run(csr, x, true, VectorPath::kReference);
    EXPECT_LT(relative_error(reference, torch::relu(torch::linear(x, dense, torch::tensor(csr.bias)))), kMaxCsrError);
    for (const auto path : {VectorPath::kAvx2, VectorPath::kAvx512}) {
      if (!vector_path_available(path)) continue;
      EXPECT_LT(relative_error(run(csr, x, true, path), reference), kMaxCsrError)
          << path_name(path) << " batch " << batch;
    }
  }
}

TEST(CsrLinear, OneScalePerTensorAppliesToEveryRow) {
  const auto q = torch::tensor({{0, 2}, {4, 0}}, torch::kChar);
  const auto csr = csr_from_int8(q, {0.5f}, {});
  const auto y = csr_linear(csr, torch::tensor({{1.f, 1.f}}), false);
  EXPECT_TRUE(torch::equal(y, torch::tensor({{1.f, 2.f}})));
}

TEST(CsrLinear, AnInputOfTheWrongWidthIsAnErrorNamingItsShape) {
  const auto csr = csr_from_dense(sparse_weight(4, 8, 0.5, 5), {});
  try {
    csr_linear(csr, torch::randn({2, 7}), false);
    FAIL() << "expected an error";
  } catch (const shrink::core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("input must be [batch, 8], got shape [2, 7]"), std::string::npos) << e.what();
  }
}

TEST(CsrLinear, ScalesThatDoNotMatchTheRowsAreAnError) {
  try {
    csr_from_int8(torch::ones({3, 4}, torch::kChar), {1.f, 2.f}, {});
    FAIL() << "expected an error";
  } catch (const shrink::core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 rows need one scale each or one for all, got 2"), std::string::npos)
        << e.what();
  }
}
