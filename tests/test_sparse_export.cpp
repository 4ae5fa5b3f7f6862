// Sparse storage: exact round trips, the smaller encoding wins, corrupt parts are detected.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "compress/prune/l1_pruner.h"
#include "core/error.h"
#include "helpers.h"
#include "io/sparse_tensor.h"
#include "io/state_dict.h"
#include "models/registry.h"

namespace fs = std::filesystem;
using namespace shrink;
using namespace shrink::testing;

namespace {

torch::Tensor sparse_matrix(int64_t rows, int64_t cols, double sparsity, uint64_t seed) {
  torch::manual_seed(seed);
  auto w = torch::randn({rows, cols});
  return w * (torch::rand({rows, cols}) >= sparsity).to(torch::kFloat);
}

}  // namespace

TEST(SparseTensor, BitmaskWinsAtModerateSparsityAndRoundTrips) {
  const auto w = sparse_matrix(64, 300, 0.8, 1);
  const auto s = io::encode(w);
  EXPECT_EQ(s.encoding, io::Encoding::kBitmask);
  EXPECT_LT(s.stored_bytes(), w.numel() * 4);
  EXPECT_TRUE(torch::equal(io::decode(s, "w"), w));
}

TEST(SparseTensor, CsrWinsAtHighSparsityWithNarrowIndices) {
  const auto w = sparse_matrix(50, 200, 0.99, 2);
  const auto s = io::encode(w);
  EXPECT_EQ(s.encoding, io::Encoding::kCsr);
  EXPECT_EQ(s.index_bytes, 1);  // 200 columns fit in one byte
  EXPECT_TRUE(torch::equal(io::decode(s, "w"), w));
}

TEST(SparseTensor, EncodingIsTheSmallestOfTheCandidates) {
  for (double sparsity : {0.0, 0.5, 0.9, 0.97, 0.999}) {
    const auto w = sparse_matrix(40, 70, sparsity, 3);
    const int64_t nnz = w.count_nonzero().item<int64_t>();
    const auto s = io::encode(w);
    EXPECT_EQ(s.stored_bytes(), std::min({w.numel() * 4, io::csr_bytes(w, nnz), io::bitmask_bytes(w, nnz)}))
        << sparsity;
    EXPECT_TRUE(torch::equal(io::decode(s, "w"), w)) << sparsity;
  }
}

TEST(SparseTensor, DenseAndIntegerTensorsStayDense) {
  EXPECT_EQ(io::encode(torch::randn({8, 8})).encoding, io::Encoding::kDense);
  EXPECT_EQ(io::encode(torch::zeros({8, 8}, torch::kLong)).encoding, io::Encoding::kDense);
}

TEST(SparseTensor, CorruptPartsAreDetectedBeforeReadingOutOfBounds) {
  auto s = io::encode(sparse_matrix(50, 200, 0.99, 2));
  s.col_indices.data_ptr<uint8_t>()[0] = 250;  // column 250 of 200
  EXPECT_THROW(io::decode(s, "w"), core::Error);
  auto b = io::encode(sparse_matrix(64, 300, 0.8, 1));
  b.values = b.values.narrow(0, 0, b.values.numel() - 1);
  try {
    io::decode(b, "layer.weight");
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'layer.weight': corrupt bitmask tensor"), std::string::npos) << e.what();
  }
}

// The format, and the largest pruned/dense size ratio allowed for a 90 %-sparse LeNet-300-100:
// 10 % of the values (4 B each) plus one bit per entry is (0.4 + 0.125) / 4 ≈ 0.131 of dense. HDF5
// also deflates the parts (below 1/8); the .pt archive adds zip and alignment overhead.
class PrunedModelFile : public ::testing::TestWithParam<std::pair<std::string, double>> {};

TEST_P(PrunedModelFile, RestoresTheIdenticalDenseModelAndIsSmaller) {
  const auto dir = scratch_dir("pruned_file_" + GetParam().first);
  torch::manual_seed(4);
  auto m = models::build_model(models::MlpOptions().hidden({300, 100}), {{1, 28, 28}, 10});
  compress::prune::L1Pruner p(
      m.ptr(), compress::prune::PruneOptions().sparsity(0.9).scope(shrink::compress::prune::PruneScope::kGlobal));
  io::save_module(dir / ("dense." + GetParam().first), *m);
  p.prune_to_fraction_of_target(1.0);
  io::save_module(dir / ("pruned." + GetParam().first), *m);
  const auto back = io::load_state_dict_file(dir / ("pruned." + GetParam().first));
  const auto orig = io::state_dict(*m);
  ASSERT_EQ(back.size(), orig.size());
  for (size_t i = 0; i < orig.size(); ++i) {
    EXPECT_EQ(back[i].name, orig[i].name);
    EXPECT_TRUE(torch::equal(back[i].tensor, orig[i].tensor)) << orig[i].name;
  }
  // Masks cost nothing (stored as their weight's pattern); values + a bitmask per weight remain.
  const double ratio = static_cast<double>(fs::file_size(dir / ("pruned." + GetParam().first))) /
                       static_cast<double>(fs::file_size(dir / ("dense." + GetParam().first)));
  EXPECT_LT(ratio, GetParam().second);
}

INSTANTIATE_TEST_SUITE_P(CompressedFormats, PrunedModelFile,
                         ::testing::Values(std::make_pair(std::string("pt"), 0.15),
                                           std::make_pair(std::string("h5"), 0.125)));

TEST(SparseExport, PthStaysDenseWithMasksForPython) {
  const auto dir = scratch_dir("pruned_pth");
  torch::manual_seed(4);
  auto m = models::build_model(models::MlpOptions().hidden({30}), {{20}, 3});
  compress::prune::L1Pruner p(m.ptr(), compress::prune::PruneOptions().sparsity(0.9));
  p.prune_to_fraction_of_target(1.0);
  io::save_module(dir / "m.pth", *m);
  std::map<std::string, at::Tensor> stored;
  for (const auto& e : io::read_stored_file(dir / "m.pth").entries) {
    EXPECT_EQ(e.data.encoding, io::Encoding::kDense) << e.name;
    EXPECT_TRUE(e.pattern_of.empty()) << e.name;
    stored[e.name] = e.data.values;
  }
  // Python gets the masks as plain tensors that agree with the pruned weights.
  for (const char* name : {"classifier.0.weight", "classifier.2.weight"}) {
    const std::string mask = std::string(name) + "_mask";
    ASSERT_TRUE(stored.count(mask)) << mask;
    EXPECT_TRUE(torch::equal(stored[mask].ne(0), stored[name].ne(0))) << mask;
    EXPECT_LT(stored[mask].sum().item<double>(), 0.2 * static_cast<double>(stored[mask].numel())) << mask;
  }
}
