// quint8 2x2 max pooling: every kernel gives LibTorch's quantized max_pool2d bytes, scale, zero
// point and memory order; a layer stack pools int8 batches on it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "core/error.h"
#include "models/layer_stack.h"
#include "runtime/int8_max_pool.h"

using namespace shrink;
using runtime::VectorPath;

namespace {

std::vector<VectorPath> kernels() {
  std::vector<VectorPath> all;
  for (const auto k : {VectorPath::kReference, VectorPath::kAvx2}) {
    if (runtime::vector_path_available(k)) all.push_back(k);
  }
  return all;
}

// Random bytes in channels-last memory, as an int8 convolution leaves them.
torch::Tensor pool_input(int64_t n, int64_t c, int64_t h, int64_t w) {
  const auto bytes = torch::randint(0, 256, {n, c, h, w}, torch::kByte);
  return torch::_make_per_tensor_quantized_tensor(bytes, 0.05, 7).contiguous(at::MemoryFormat::ChannelsLast);
}

void expect_same_pooling(const torch::Tensor& got, const torch::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  ASSERT_EQ(got.scalar_type(), torch::kQUInt8);
  EXPECT_EQ(got.q_scale(), want.q_scale());
  EXPECT_EQ(got.q_zero_point(), want.q_zero_point());
  EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(got.int_repr(), want.int_repr()));
}

torch::Tensor libtorch_pool(const torch::Tensor& x) { return at::max_pool2d(x, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false); }

}  // namespace

TEST(Int8MaxPool, EveryKernelGivesLibTorchsBytesScaleAndZeroPoint) {
  torch::manual_seed(0);
  // Channels in whole and partial vectors of 32 and 16 and single bytes; odd sizes drop a row and a
  // column, as floor mode does.
  for (const auto& s : std::vector<std::vector<int64_t>>{
           {2, 32, 28, 28}, {1, 64, 14, 14}, {3, 1, 5, 4}, {2, 17, 7, 9}, {1, 49, 2, 3}, {2, 70, 6, 6}}) {
    const auto x = pool_input(s[0], s[1], s[2], s[3]);
    ASSERT_TRUE(runtime::int8_max_pool2x2_applies(x));
    const auto want = libtorch_pool(x);
    for (const auto kernel : kernels()) {
      SCOPED_TRACE(runtime::path_name(kernel) + " on " + c10::str(x.sizes()));
      expect_same_pooling(runtime::int8_max_pool2x2(x, kernel), want);
    }
  }
}

TEST(Int8MaxPool, InputsNotInChannelsLastOrderGoThroughLibTorch) {
  torch::manual_seed(1);
  const auto nchw = pool_input(2, 8, 6, 6).contiguous();
  EXPECT_FALSE(runtime::int8_max_pool2x2_applies(nchw));
  EXPECT_TRUE(torch::equal(runtime::int8_max_pool2x2(nchw).int_repr(), libtorch_pool(nchw).int_repr()));
  const auto floats = torch::randn({2, 8, 6, 6});
  EXPECT_FALSE(runtime::int8_max_pool2x2_applies(floats));
  EXPECT_TRUE(torch::equal(runtime::int8_max_pool2x2(floats), libtorch_pool(floats)));
}

TEST(Int8MaxPool, AskingForTheAvx512KernelSaysThereIsNone) {
  const auto x = pool_input(1, 16, 4, 4);
  try {
    runtime::int8_max_pool2x2(x, VectorPath::kAvx512);
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no avx512 path"), std::string::npos) << e.what();
  }
}

TEST(Int8MaxPool, ALayerStackPoolsAnInt8BatchOnShrinksKernel) {
  torch::manual_seed(2);
  models::LayerStack stack;
  stack->push_back(torch::nn::Identity());
  stack->push_back(torch::nn::MaxPool2d(2));
  stack->eval();
  const auto x = pool_input(2, 32, 10, 10);
  const auto y = stack->forward(x);
  // LibTorch's pooling keeps the input's memory order; shrink's always gives channels-last.
  expect_same_pooling(y, libtorch_pool(x));
}
