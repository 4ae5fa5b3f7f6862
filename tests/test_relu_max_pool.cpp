// Fused ReLU + 2x2 max pooling: bit-identical to at::relu then at::max_pool2d, forward and gradient,
// including ties, NaN, windows ReLU zeroes, odd sizes and the layer stack that fuses the pair.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "models/layer_stack.h"
#include "runtime/relu_max_pool.h"

using namespace shrink::runtime;

namespace {

struct Result {
  torch::Tensor out, grad;
};

// Output and input gradient under a fixed upstream gradient, through `f`.
template <class F>
Result run(const torch::Tensor& input, const torch::Tensor& grad_out, F f) {
  auto x = input.detach().clone().requires_grad_(true);
  auto out = f(x);
  out.backward(grad_out);
  return {out.detach(), x.grad()};
}

Result reference(const torch::Tensor& input, const torch::Tensor& grad_out) {
  return run(input, grad_out, [](const torch::Tensor& x) { return torch::max_pool2d(torch::relu(x), 2); });
}

Result fused(const torch::Tensor& input, const torch::Tensor& grad_out, VectorPath kernel) {
  return run(input, grad_out, [&](const torch::Tensor& x) { return relu_max_pool2x2(x, kernel); });
}

Result fused(const torch::Tensor& input, const torch::Tensor& grad_out) {
  return run(input, grad_out, [](const torch::Tensor& x) { return relu_max_pool2x2(x); });
}

// The kernels this CPU runs: the scalar reference, and the vector ones the CPU has.
std::vector<VectorPath> kernels() {
  std::vector<VectorPath> all;
  for (const auto k : {VectorPath::kReference, VectorPath::kAvx2, VectorPath::kAvx512}) {
    if (vector_path_available(k)) all.push_back(k);
  }
  return all;
}

// Equal bit for bit, zeros' signs included; NaN where NaN.
void expect_identical(const torch::Tensor& a, const torch::Tensor& b) {
  ASSERT_EQ(a.sizes(), b.sizes());
  ASSERT_EQ(a.scalar_type(), b.scalar_type());
  EXPECT_TRUE(torch::equal(a.isnan(), b.isnan()));
  EXPECT_TRUE(torch::equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))
      << "largest difference " << (a - b).abs().nan_to_num(0.0).max().item<double>();
  EXPECT_TRUE(torch::equal(torch::signbit(a.nan_to_num(0.0)), torch::signbit(b.nan_to_num(0.0))))
      << "a zero's sign differs";
}

void expect_matches_reference(const torch::Tensor& x) {
  ASSERT_TRUE(relu_max_pool2x2_fuses(x));
  torch::manual_seed(3);
  const auto grad_out = torch::randn({x.size(0), x.size(1), x.size(2) / 2, x.size(3) / 2}, x.options());
  const auto want = reference(x, grad_out);
  for (const auto kernel : kernels()) {
    SCOPED_TRACE(path_name(kernel));
    const auto got = fused(x, grad_out, kernel);
    expect_identical(got.out, want.out);
    expect_identical(got.grad, want.grad);
  }
}

}  // namespace

TEST(ReluMaxPool, ForwardAndGradientAreBitIdenticalToReluThenMaxPool) {
  torch::manual_seed(0);
  expect_matches_reference(torch::randn({8, 16, 28, 28}));
}

TEST(ReluMaxPool, RowsWiderThanOneVectorAndTheirTailsMatch) {
  // 35 and 16 windows a row: whole vector steps (16 or 8 windows), masked tails, and exact fits.
  torch::manual_seed(9);
  expect_matches_reference(torch::randn({2, 3, 6, 70}));
  expect_matches_reference(torch::randn({2, 3, 6, 32}));
  expect_matches_reference(torch::randn({2, 3, 5, 3}));
}

TEST(ReluMaxPool, TiesGoToTheFirstMaximumAsLibTorchsScanDoes) {
  // Quantized values make ties within a window common, at positive values and at zero.
  torch::manual_seed(1);
  expect_matches_reference(torch::randint(-2, 3, {4, 8, 12, 12}).to(torch::kFloat));
}

TEST(ReluMaxPool, WindowsReluZeroesPassNoGradient) {
  auto x = -torch::rand({2, 3, 6, 6}) - 0.1;
  x.index_put_({0, 0, 0, 0}, 5.0);
  for (const auto kernel : kernels()) {
    SCOPED_TRACE(path_name(kernel));
    const auto got = fused(x, torch::ones({2, 3, 3, 3}), kernel);
    EXPECT_EQ(got.grad.sum().item<float>(), 1.0f);
    EXPECT_EQ(got.grad[0][0][0][0].item<float>(), 1.0f);
    EXPECT_EQ(got.out.count_nonzero().item<int64_t>(), 1);
  }
}

TEST(ReluMaxPool, NaNPropagatesAndTakesTheGradientLikeTheUnfusedPair) {
  torch::manual_seed(2);
  auto x = torch::randn({2, 2, 8, 8});
  x.index_put_({0, 0, 0, 1}, std::nanf(""));  // NaN after the window's first value
  x.index_put_({0, 1, 2, 2}, std::nanf(""));  // NaN first
  x.index_put_({1, 0, 4, 4}, std::nanf(""));  // two NaNs in one window: the later wins
  x.index_put_({1, 0, 5, 5}, std::nanf(""));
  x.index_put_({1, 1, 6, 6}, -std::nanf(""));  // a negative NaN
  expect_matches_reference(x);
}

TEST(ReluMaxPool, NegativeZeroStaysNegativeAsReluThenMaxPoolLeaveIt) {
  // at::relu keeps -0, and the pooling's scan keeps the first of equal zeros.
  torch::manual_seed(8);
  auto x = torch::randn({2, 3, 6, 38});
  x.view(-1).index_put_({torch::randint(0, x.numel(), {200})}, -0.0f);
  x.view(-1).index_put_({torch::randint(0, x.numel(), {100})}, 0.0f);
  expect_matches_reference(x);
  expect_matches_reference(x.to(torch::kBFloat16));
  expect_matches_reference(x.to(torch::kDouble));
}

TEST(ReluMaxPool, OddSizesDropTheLastRowAndColumnAndGiveThemZeroGradient) {
  torch::manual_seed(4);
  expect_matches_reference(torch::randn({3, 5, 7, 9}));
  const auto x = torch::randn({1, 1, 3, 3}).abs() + 1;
  for (const auto kernel : kernels()) {
    SCOPED_TRACE(path_name(kernel));
    const auto got = fused(x, torch::ones({1, 1, 1, 1}), kernel);
    EXPECT_EQ(got.grad.index({0, 0, 2}).abs().sum().item<float>(), 0.0f);
    EXPECT_EQ(got.grad.index({0, 0, torch::indexing::Slice(), 2}).abs().sum().item<float>(), 0.0f);
  }
}

TEST(ReluMaxPool, DoubleAndBfloat16MatchInTheirOwnType) {
  torch::manual_seed(5);
  expect_matches_reference(torch::randn({4, 6, 10, 10}, torch::kDouble));
  expect_matches_reference(torch::randn({4, 6, 10, 10}).to(torch::kBFloat16));
}

TEST(ReluMaxPool, Bfloat16OnEveryPathMatchesTheUnfusedPairWithTailsTiesAndNaN) {
  torch::manual_seed(6);
  expect_matches_reference(torch::randn({2, 3, 6, 70}).to(torch::kBFloat16));            // 35 windows a row: a tail
  expect_matches_reference(torch::randn({2, 3, 6, 32}).to(torch::kBFloat16));            // an exact fit
  expect_matches_reference(torch::randn({3, 5, 7, 9}).to(torch::kBFloat16));             // odd sizes
  expect_matches_reference(torch::randint(-2, 3, {4, 8, 12, 12}).to(torch::kBFloat16));  // ties
  auto x = torch::randn({2, 2, 8, 8});
  x.index_put_({0, 0, 0, 1}, std::nanf(""));
  x.index_put_({1, 0, 4, 4}, std::nanf(""));
  x.index_put_({1, 0, 5, 5}, std::nanf(""));
  x.index_put_({1, 1, 6, 6}, -std::nanf(""));
  expect_matches_reference(x.to(torch::kBFloat16));
}

TEST(ReluMaxPool, Bfloat16VectorPathEqualsTheScalarReferenceBitForBit) {
  // NaNs with payloads and both signs of zero: a pooled NaN comes out as c10::BFloat16(float) makes
  // it (0x7FC0), and a gradient's NaN is copied as it came.
  torch::manual_seed(7);
  auto bits = torch::randn({2, 4, 6, 38}).to(torch::kBFloat16).view(torch::kShort);
  for (const int16_t pattern : {int16_t(0x7FC1), int16_t(0xFF81), int16_t(0x7F81), int16_t(0x8000)}) {
    bits.view(-1).index_put_({torch::randint(0, bits.numel(), {24})}, pattern);
  }
  const auto x = bits.view(torch::kBFloat16);
  auto grad_bits = torch::randn({2, 4, 3, 19}).to(torch::kBFloat16).view(torch::kShort);
  grad_bits.view(-1).index_put_({torch::randint(0, grad_bits.numel(), {12})}, int16_t(0x7FA5));
  const auto grad_out = grad_bits.view(torch::kBFloat16);
  const auto want = fused(x, grad_out, VectorPath::kReference);
  for (const auto kernel : kernels()) {
    SCOPED_TRACE(path_name(kernel));
    const auto got = fused(x, grad_out, kernel);
    EXPECT_TRUE(torch::equal(got.out.view(torch::kShort), want.out.view(torch::kShort)));
    EXPECT_TRUE(torch::equal(got.grad.view(torch::kShort), want.grad.view(torch::kShort)));
  }
}

TEST(ReluMaxPool, WithoutGradientItReturnsTheSameValues) {
  torch::manual_seed(6);
  const auto x = torch::randn({4, 8, 14, 14});
  const torch::NoGradGuard no_grad;
  for (const auto kernel : kernels()) {
    EXPECT_TRUE(torch::equal(relu_max_pool2x2(x, kernel), torch::max_pool2d(torch::relu(x), 2))) << path_name(kernel);
  }
}

TEST(ReluMaxPool, InputsTheKernelDoesNotTakeGoThroughTheUnfusedPair) {
  torch::manual_seed(7);
  const auto channels_last = torch::randn({2, 4, 8, 8}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto half = torch::randn({2, 4, 8, 8}).to(torch::kHalf);
  EXPECT_FALSE(relu_max_pool2x2_fuses(channels_last));
  EXPECT_FALSE(relu_max_pool2x2_fuses(half));
  EXPECT_FALSE(relu_max_pool2x2_fuses(torch::randn({4, 8, 8})));
  EXPECT_FALSE(relu_max_pool2x2_fuses(torch::randn({1, 1, 1, 8})));
  const auto grad_out = torch::randn({2, 4, 4, 4});
  const auto want = reference(channels_last, grad_out);
  const auto got = fused(channels_last, grad_out);
  expect_identical(got.out, want.out);
  expect_identical(got.grad, want.grad);
}

TEST(ReluMaxPool, QuantizedInputGoesThroughLibTorchsQuantizedPair) {
  torch::manual_seed(10);
  const auto q = torch::quantize_per_tensor(torch::randn({2, 4, 8, 8}), 0.05, 128, torch::kQUInt8);
  EXPECT_FALSE(relu_max_pool2x2_fuses(q));
  const auto got = relu_max_pool2x2(q);
  ASSERT_TRUE(got.is_quantized());
  EXPECT_TRUE(
      torch::equal(got.int_repr(), torch::max_pool2d(torch::relu(q), {2, 2}, {2, 2}, {0, 0}, {1, 1}).int_repr()));
}

TEST(ReluMaxPool, OnlyTheTwoByTwoStrideTwoPoolingIsFused) {
  namespace nn = torch::nn;
  EXPECT_TRUE(is_max_pool2x2(nn::MaxPool2dOptions(2)));
  EXPECT_TRUE(is_max_pool2x2(nn::MaxPool2dOptions(2).stride(2)));
  EXPECT_FALSE(is_max_pool2x2(nn::MaxPool2dOptions(3)));
  EXPECT_FALSE(is_max_pool2x2(nn::MaxPool2dOptions(2).stride(1)));
  EXPECT_FALSE(is_max_pool2x2(nn::MaxPool2dOptions(2).padding(1)));
  EXPECT_FALSE(is_max_pool2x2(nn::MaxPool2dOptions(2).dilation(2)));
  EXPECT_FALSE(is_max_pool2x2(nn::MaxPool2dOptions(2).ceil_mode(true)));
  EXPECT_FALSE(is_max_pool2x2(nn::MaxPool2dOptions({2, 1})));
}

TEST(ReluMaxPool, ALayerStackGivesTheSameOutputAndGradientsAsItsLayersOneByOne) {
  namespace nn = torch::nn;
  torch::manual_seed(8);
  shrink::models::LayerStack stack;
  stack->push_back(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)));
  stack->push_back(nn::ReLU());
  stack->push_back(nn::MaxPool2d(2));
  stack->push_back(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding(1)));
  stack->push_back(nn::ReLU());
  stack->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(1)));  // not fused
  const auto x = torch::randn({3, 1, 10, 10});

  const auto grads = [&](const torch::Tensor& out) {
    stack->zero_grad();
    out.sum().backward();
    std::vector<torch::Tensor> g;
    for (const auto& p : stack->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  const auto fused_out = stack->forward(x);
  const auto fused_grads = grads(fused_out);
  auto y = x;
  for (size_t i = 0; i < stack->size(); ++i) y = stack->run_layer(i, y);
  const auto plain_grads = grads(y);

  expect_identical(fused_out.detach(), y.detach());
  ASSERT_EQ(fused_grads.size(), plain_grads.size());
  for (size_t i = 0; i < fused_grads.size(); ++i) expect_identical(fused_grads[i], plain_grads[i]);
}
