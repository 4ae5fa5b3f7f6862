// Meta tensors: modules built and run with shapes and byte counts only, the same shapes as on the CPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/meta_tensors.h"

using shrink::core::MetaTensorScope;

namespace {

// The shape LibTorch's own CPU kernel gives for the same module and input.
std::vector<int64_t> cpu_shape(torch::nn::Conv2dOptions options, std::vector<int64_t> input) {
  torch::nn::Conv2d conv(options);
  return conv(torch::zeros(input)).sizes().vec();
}

std::vector<int64_t> meta_shape(torch::nn::Conv2dOptions options, std::vector<int64_t> input) {
  MetaTensorScope meta;
  torch::nn::Conv2d conv(options);
  const auto y = conv(torch::empty(input));
  EXPECT_TRUE(y.is_meta());
  return y.sizes().vec();
}

}  // namespace

TEST(MetaTensors, TensorsMadeInTheScopeAreMetaAndThoseAfterAreNot) {
  {
    MetaTensorScope meta;
    EXPECT_TRUE(torch::empty({3}).is_meta());
    EXPECT_TRUE(torch::nn::Linear(4, 2)->weight.is_meta());
  }
  EXPECT_TRUE(torch::empty({3}).device().is_cpu());
  // Ops on CPU tensors after the scope run on the CPU again.
  const auto x = torch::arange(6.0).index_select(0, torch::tensor({1, 3}));
  EXPECT_TRUE(x.device().is_cpu());
  EXPECT_EQ(x[1].item<double>(), 3.0);
}

TEST(MetaTensors, TheScopeCountsTheBytesItsTensorsWouldTake) {
  MetaTensorScope meta;
  torch::nn::Linear linear(1000, 300);  // 300 x 1000 weights and 300 biases, float32
  EXPECT_EQ(meta.live_bytes(), (300u * 1000u + 300u) * 4u);
}

TEST(MetaTensors, PeakBytesCoverTheLargestMomentOfAForward) {
  MetaTensorScope meta;
  torch::nn::Linear wide(10, 100000);
  const auto x = torch::empty({8, 10});
  const auto before = meta.live_bytes();
  meta.reset_peak();
  { const auto y = torch::relu(wide(x)); }
  // The Linear's output (8 x 100000 floats) existed at some point; it is gone after.
  EXPECT_GE(meta.peak_bytes() - before, 8u * 100000u * 4u);
  EXPECT_EQ(meta.live_bytes(), before);
}

TEST(MetaTensors, ConvolutionShapesMatchTheCpuKernelForStridePaddingDilationAndGroups) {
  const std::vector<std::pair<torch::nn::Conv2dOptions, std::vector<int64_t>>> cases = {
      {torch::nn::Conv2dOptions(3, 8, 3).padding(1), {2, 3, 16, 16}},
      {torch::nn::Conv2dOptions(3, 8, 1).stride(2).bias(false), {2, 3, 15, 15}},
      {torch::nn::Conv2dOptions(4, 8, {3, 5}).dilation({2, 1}).padding({0, 2}), {1, 4, 11, 9}},
      {torch::nn::Conv2dOptions(8, 8, 3).groups(8).stride(2).padding(1), {1, 8, 7, 7}},
      {torch::nn::Conv2dOptions(6, 4, 3).groups(2), {1, 6, 5, 5}},
  };
  for (const auto& [options, input] : cases) {
    EXPECT_EQ(meta_shape(options, input), cpu_shape(options, input)) << options.kernel_size();
  }
}

TEST(MetaTensors, AConvolutionWhoseOutputWouldBeEmptyThrowsAsOnTheCpu) {
  MetaTensorScope meta;
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 5));
  EXPECT_THROW(conv(torch::empty({1, 3, 4, 4})), c10::Error);
}

TEST(MetaTensors, AConvolutionGivenTheWrongChannelCountThrows) {
  MetaTensorScope meta;
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 3));
  try {
    conv(torch::empty({1, 4, 8, 8}));
    FAIL() << "expected a c10::Error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("to have 3 channels, but got 4"), std::string::npos) << e.what();
  }
}

TEST(MetaTensors, BatchNormAndReluKeepTheirInputsShapeInTrainingAndEvaluation) {
  MetaTensorScope meta;
  torch::nn::BatchNorm2d bn(6);
  const auto x = torch::empty({2, 6, 5, 5});
  for (const bool training : {true, false}) {
    bn->train(training);
    EXPECT_EQ(torch::relu(bn(x)).sizes().vec(), x.sizes().vec());
  }
}
