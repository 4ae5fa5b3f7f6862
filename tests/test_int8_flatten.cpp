// Flattening quint8 images in channels-last memory: the NCHW order LibTorch's flatten gives, with
// the scale and zero point, for every size around the 16 × 16 blocks; other tensors as LibTorch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "runtime/int8_flatten.h"

using namespace shrink;

namespace {

torch::Tensor flatten_input(int64_t n, int64_t c, int64_t h, int64_t w) {
  const auto bytes = torch::randint(0, 256, {n, c, h, w}, torch::kByte);
  return torch::_make_per_tensor_quantized_tensor(bytes, 0.125, 3).contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace

TEST(Int8Flatten, ChannelsLastImagesFlattenInNchwOrder) {
  torch::manual_seed(0);
  // Pixels and channels in whole 16-blocks, with edges of both, and below one block.
  for (const auto& s : std::vector<std::vector<int64_t>>{
           {3, 64, 7, 7}, {2, 32, 4, 4}, {1, 16, 4, 8}, {2, 17, 5, 4}, {1, 35, 3, 11}, {2, 5, 3, 3}, {1, 2, 1, 2}}) {
    SCOPED_TRACE(c10::str(s));
    const auto x = flatten_input(s[0], s[1], s[2], s[3]);
    const auto got = runtime::int8_flatten(x), want = x.flatten(1);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_EQ(got.q_scale(), x.q_scale());
    EXPECT_EQ(got.q_zero_point(), x.q_zero_point());
    EXPECT_TRUE(torch::equal(got.int_repr(), want.int_repr()));
  }
}

TEST(Int8Flatten, OtherTensorsFlattenAsLibTorchFlattensThem) {
  torch::manual_seed(1);
  const auto floats = torch::randn({2, 8, 3, 3}).contiguous(at::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(torch::equal(runtime::int8_flatten(floats), floats.flatten(1)));
  const auto nchw = flatten_input(2, 8, 3, 3).contiguous();
  EXPECT_TRUE(torch::equal(runtime::int8_flatten(nchw).int_repr(), nchw.flatten(1).int_repr()));
  const auto one_channel = flatten_input(2, 1, 4, 4);  // channels-last and contiguous at once
  EXPECT_TRUE(torch::equal(runtime::int8_flatten(one_channel).int_repr(), one_channel.flatten(1).int_repr()));
}
