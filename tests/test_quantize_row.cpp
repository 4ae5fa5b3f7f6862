// Float rows to quint8 (the inputs of shrink's int8 Linear) and their range: the scalar reference
// is ATen's quantize_per_tensor, and every vector path is the reference byte for byte.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "runtime/quantize_row.h"

using namespace shrink;
using runtime::VectorPath;

namespace {

constexpr VectorPath kVectorPaths[] = {VectorPath::kAvx2, VectorPath::kAvx512};

// Lengths around both vector widths and their tails, and one long row.
const std::vector<int64_t> kLengths = {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000};

// Seeded values over about ±300 levels around the zero point, with exact ties (k + ½ levels,
// where round half to even decides) mixed in.
std::vector<float> row_values(int64_t n, float scale, int seed) {
  torch::manual_seed(seed);
  const auto normal = (torch::randn({n}) * 120.0f * scale).contiguous();
  std::vector<float> x(normal.data_ptr<float>(), normal.data_ptr<float>() + n);
  for (int64_t i = 0; i < n; i += 3) x[static_cast<size_t>(i)] = (static_cast<float>(i % 41) - 20.5f) * scale;
  return x;
}

std::vector<uint8_t> quantized(const std::vector<float>& x, float scale, int32_t zp, VectorPath path) {
  std::vector<uint8_t> out(x.size(), 0xAB);
  runtime::quantize_row(x.data(), static_cast<int64_t>(x.size()), scale, zp, out.data(), path);
  return out;
}

}  // namespace

TEST(Int8QuantizeRow, TheReferenceIsAtensQuantizePerTensorIncludingTies) {
  for (const float scale : {0.0173f, 0.5f, 1.0f / 255.0f}) {
    for (const int32_t zp : {0, 3, 128, 255}) {
      const auto x = row_values(1000, scale, 11);
      const auto ours = quantized(x, scale, zp, VectorPath::kReference);
      const auto theirs = at::quantize_per_tensor(torch::tensor(x), scale, zp, at::kQUInt8).int_repr().contiguous();
      const std::vector<uint8_t> expected(theirs.data_ptr<uint8_t>(), theirs.data_ptr<uint8_t>() + x.size());
      EXPECT_EQ(ours, expected) << "scale " << scale << ", zero point " << zp;
    }
  }
}

TEST(Int8QuantizeRow, EveryVectorPathEqualsTheReferenceAtEveryLength) {
  int vector_paths = 0;
  for (const auto path : kVectorPaths) {
    if (!runtime::vector_path_available(path)) continue;
    ++vector_paths;
    for (const int64_t n : kLengths) {
      for (const int32_t zp : {0, 77, 255}) {
        const auto x = row_values(n, 0.031f, static_cast<int>(n));
        EXPECT_EQ(quantized(x, 0.031f, zp, VectorPath::kReference), quantized(x, 0.031f, zp, path))
            << runtime::path_name(path) << ", " << n << " values, zero point " << zp;
      }
    }
  }
  if (vector_paths == 0) GTEST_SKIP() << "this CPU (under its cap) has no vector path: the reference runs";
}

TEST(Int8QuantizeRow, InfinitiesAndHugeValuesSaturateAndNanIsZeroOnEveryPath) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // 40 values, so that both vector widths and a tail see them.
  std::vector<float> x;
  for (int i = 0; i < 5; ++i) {
    for (const float v : {inf, -inf, nan, 3e9f, -3e9f, 1e30f, -1e30f, 0.0f}) x.push_back(v);
  }
  std::vector<uint8_t> expected;
  for (int i = 0; i < 5; ++i) {
    for (const uint8_t v : {255, 0, 0, 255, 0, 255, 0, 9}) expected.push_back(v);
  }
  for (const auto path : {VectorPath::kReference, VectorPath::kAvx2, VectorPath::kAvx512}) {
    if (!runtime::vector_path_available(path)) continue;
    EXPECT_EQ(quantized(x, 1.0f, 9, path), expected) << runtime::path_name(path);
  }
}

TEST(Int8QuantizeRow, TheRangeOnEveryPathIsTheSmallestAndLargestValueSkippingNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const int64_t n : kLengths) {
    if (n == 0) continue;
    auto x = row_values(n, 0.1f, static_cast<int>(n) + 5);
    x[static_cast<size_t>(n / 2)] = nan;  // NaN in the vector part, or alone
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (const float v : x) {
      if (std::isnan(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (lo > hi) lo = hi = 0.0f;
    for (const auto path : {VectorPath::kReference, VectorPath::kAvx2, VectorPath::kAvx512}) {
      if (!runtime::vector_path_available(path)) continue;
      const auto range = runtime::float_range(x.data(), n, path);
      EXPECT_EQ(range.min, lo) << runtime::path_name(path) << ", " << n << " values";
      EXPECT_EQ(range.max, hi) << runtime::path_name(path) << ", " << n << " values";
    }
  }
}

TEST(Int8QuantizeRow, AnEmptyOrAllNanRowHasTheRangeZeroToZero) {
  const std::vector<float> nans(20, std::numeric_limits<float>::quiet_NaN());
  for (const auto path : {VectorPath::kReference, VectorPath::kAvx2, VectorPath::kAvx512}) {
    if (!runtime::vector_path_available(path)) continue;
    for (const int64_t n : {int64_t{0}, int64_t{20}}) {
      const auto range = runtime::float_range(nans.data(), n, path);
      EXPECT_EQ(range.min, 0.0f) << runtime::path_name(path) << ", " << n << " values";
      EXPECT_EQ(range.max, 0.0f) << runtime::path_name(path) << ", " << n << " values";
    }
  }
}

TEST(Int8QuantizeRow, APathTheCpuLacksIsAnErrorNamingIt) {
  for (const auto path : kVectorPaths) {
    if (runtime::vector_path_available(path)) continue;
    const float x = 1.0f;
    uint8_t out = 0;
    try {
      runtime::quantize_row(&x, 1, 1.0f, 0, &out, path);
      FAIL() << "expected an Error for " << runtime::path_name(path);
    } catch (const core::Error& e) {
      EXPECT_NE(std::string(e.what()).find("no " + runtime::path_name(path) + " path"), std::string::npos) << e.what();
    }
    return;
  }
  GTEST_SKIP() << "this CPU (under its cap) has every path; the cpu_path.* runs cap it";
}
