// Inference plans: the fast candidate for each zoo model uses the fast ops and matches the plain
// forward within the named tolerance, at the planned batch size and at others.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "compress/quantize/quantizer.h"
#include "core/error.h"
#include "data/dataset.h"
#include "helpers.h"
#include "models/bert.h"
#include "models/inference_plan.h"
#include "models/zoo.h"
#include "runtime/packed_linear.h"

using namespace shrink;
using namespace shrink::models;
using shrink::testing::contains;

namespace {

// BatchNorm with statistics of its own, so folding it into the convolutions is tested.
Model with_trained_batch_norm(Classifier c, const std::vector<int64_t>& shape) {
  torch::NoGradGuard no_grad;
  c->train();
  std::vector<int64_t> batch{32};
  batch.insert(batch.end(), shape.begin(), shape.end());
  for (int i = 0; i < 3; ++i) c->forward(torch::randn(batch) * 2 + 0.5);
  c->eval();
  return to_model(c);
}

double relative_error(const torch::Tensor& got, const torch::Tensor& expected) {
  return ((got - expected).abs().max() / std::max(1.0, expected.abs().max().item<double>())).item<double>();
}

// The candidate against the model's own forward on fresh inputs of several batch sizes.
void expect_candidate_matches(const Model& m, const InferencePlan& plan, const std::vector<int64_t>& shape,
                              double tolerance) {
  ASSERT_TRUE(plan.candidate) << "no fast candidate was built";
  torch::NoGradGuard no_grad;
  for (const int64_t batch : {1, 5, 64}) {
    std::vector<int64_t> s{batch};
    s.insert(s.end(), shape.begin(), shape.end());
    const auto x = torch::randn(s);
    EXPECT_LT(relative_error(plan.candidate(x), m.forward(x)), tolerance) << "batch " << batch;
  }
}

}  // namespace

TEST(InferencePlan, ConvNetRunsOnPrepackedOneDnnConvolutionsWithBatchNormFolded) {
  torch::manual_seed(1);
  const std::vector<int64_t> shape{1, 28, 28};
  const auto m = with_trained_batch_norm(build_model(ConvNetOptions().channels({8, 16}).fc({32}), {shape, 10}), shape);
  const auto plan = plan_inference(m, shape, 16, c10::kCPU);
  EXPECT_TRUE(contains(plan.candidate_path, "onednn-conv")) << plan.candidate_path;
  EXPECT_LE(plan.max_error, kMaxFastPathError);
  expect_candidate_matches(m, plan, shape, kMaxFastPathError);
}

namespace {

// A convolution (6 channels, 3x3, padded), a ReLU if asked, the pooling, then a Linear: its plan's
// candidate on oneDNN against the model's own forward.
void expect_conv_pool_plan_matches(bool relu, const torch::nn::MaxPool2dOptions& pool, int64_t side,
                                   int64_t pooled_side) {
  Classifier c("custom");
  c->features->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 6, 3).padding(1)));
  if (relu) c->features->push_back(torch::nn::ReLU());
  c->features->push_back(torch::nn::MaxPool2d(pool));
  c->classifier->push_back(torch::nn::Linear(6 * pooled_side * pooled_side, 10));
  c->eval();
  const auto m = to_model(c);
  const std::vector<int64_t> shape{1, side, side};
  const auto plan = plan_inference(m, shape, 8, c10::kCPU);
  EXPECT_TRUE(contains(plan.candidate_path, "onednn-conv")) << plan.candidate_path;
  expect_candidate_matches(m, plan, shape, kMaxFastPathError);
}

}  // namespace

// The plan runs a ReLU after the max pooling that follows it (the two commute): with windows that
// overlap, reach into the padding and past the edge (ceil mode), the logits stay the model's.
TEST(InferencePlan, AReluBeforeAnOverlappingPaddedCeilModeMaxPoolingGivesTheModelsLogits) {
  torch::manual_seed(11);
  expect_conv_pool_plan_matches(true, torch::nn::MaxPool2dOptions(3).stride(2).padding(1).ceil_mode(true), 11, 6);
}

// Without a ReLU before it the pooling keeps its negative values.
TEST(InferencePlan, AMaxPoolingWithoutAReluBeforeItGivesTheModelsLogits) {
  torch::manual_seed(13);
  expect_conv_pool_plan_matches(false, torch::nn::MaxPool2dOptions(2), 10, 5);
}

TEST(InferencePlan, ResNetBlocksMatchThePlainPath) {
  torch::manual_seed(2);
  const std::vector<int64_t> shape{3, 16, 16};
  const auto m = with_trained_batch_norm(build_model(ResNetOptions().widths({8, 16}).blocks(2), {shape, 10}), shape);
  const auto plan = plan_inference(m, shape, 4, c10::kCPU);
  EXPECT_TRUE(contains(plan.candidate_path, "onednn-conv")) << plan.candidate_path;
  expect_candidate_matches(m, plan, shape, kMaxFastPathError);
}

TEST(InferencePlan, OneSampleThroughAnMlpIsAChainOfGemv) {
  torch::manual_seed(3);
  const std::vector<int64_t> shape{1, 28, 28};
  const auto m =
      with_trained_batch_norm(build_model(MlpOptions().hidden({300, 100}).batch_norm(true), {shape, 10}), shape);
  const auto plan = plan_inference(m, shape, 1, c10::kCPU, InferenceOptions().dense_linear(DenseLinear::kLibTorch));
  EXPECT_EQ(plan.candidate_path, "addmv");
  expect_candidate_matches(m, plan, shape, kMaxFastPathError);
}

// BatchNorm folded and ReLU fused into the packed kernel, one sample and a batch, planned for 64.
TEST(InferencePlan, DenseLinearLayersRunOnThePackedKernelWithBatchNormFolded) {
  torch::manual_seed(12);
  const std::vector<int64_t> shape{1, 28, 28};
  const auto m =
      with_trained_batch_norm(build_model(MlpOptions().hidden({300, 100}).batch_norm(true), {shape, 10}), shape);
  const auto plan = plan_inference(m, shape, 64, c10::kCPU, InferenceOptions().dense_linear(DenseLinear::kPacked));
  EXPECT_EQ(plan.candidate_path, "packed-linear");
  EXPECT_LE(plan.max_error, kMaxFastPathError);
  expect_candidate_matches(m, plan, shape, kMaxFastPathError);
}

namespace {

BertOptions tiny_bert() {
  return BertOptions().vocab_size(50).hidden(32).layers(2).heads(4).intermediate(64).max_positions(24);
}

// Sentences of 1 to `length` tokens, padded to `length`.
torch::Tensor padded_ids(int64_t batch, int64_t length) {
  auto ids = torch::randint(1, 50, {batch, length}, torch::kLong);
  for (int64_t i = 0; i < batch; ++i) ids[i].narrow(0, 1 + i % length, length - 1 - i % length).zero_();
  return ids;
}

}  // namespace

TEST(InferencePlan, ABertsLinearLayersRunOnThePackedKernelAndGiveItsLogits) {
  torch::manual_seed(13);
  BertModel bert(tiny_bert().classes(3));
  const auto m = to_model(bert);
  bert->eval();
  torch::NoGradGuard no_grad;
  const auto ids = padded_ids(5, 12);
  const auto before = m.forward(ids);
  const auto plan = plan_inference(m, {12}, 4, c10::kCPU, InferenceOptions().dense_linear(DenseLinear::kPacked));
  ASSERT_TRUE(plan.candidate);
  EXPECT_EQ(plan.candidate_path, "packed-linear");
  EXPECT_LE(plan.max_error, kMaxFastPathError);
  EXPECT_TRUE(torch::equal(m.forward(ids), before)) << "planning changed the module's own forward";
  // Every path of the packed kernel gives its reference's bits, so the plan gives those of the
  // module with each Linear on the packed kernel, and the module's own within the tolerance.
  const BertStackRunner packed = [](LayerStackImpl& stack, const at::Tensor& x) {
    const auto linear = stack.as<torch::nn::LinearImpl>(0);
    auto y = runtime::packed_linear(runtime::pack_linear(linear->weight, linear->bias), x.reshape({-1, x.size(-1)}),
                                    false, runtime::best_vector_path());
    for (size_t i = 1; i < stack.size(); ++i) y = stack.run_layer(i, y);
    auto sizes = x.sizes().vec();
    sizes.back() = y.size(-1);
    return y.view(sizes);
  };
  for (const int64_t batch : {1, 3, 9}) {
    const auto x = padded_ids(batch, 12);
    EXPECT_TRUE(torch::equal(plan.candidate(x), bert->forward(x, packed))) << "batch " << batch;
    EXPECT_LT(relative_error(plan.candidate(x), m.forward(x)), kMaxFastPathError) << "batch " << batch;
  }
}

TEST(InferencePlan, ABertWithItsLinearLayersOnLibTorchsKernelRunsPlain) {
  torch::manual_seed(13);
  const auto m = to_model(BertModel(tiny_bert()));
  const auto plan = plan_inference(m, {12}, 4, c10::kCPU, InferenceOptions().dense_linear(DenseLinear::kLibTorch));
  EXPECT_EQ(plan.path, "plain");
  EXPECT_FALSE(plan.candidate);
}

TEST(InferencePlan, ADynamicInt8BertsInt8LayersRunAsTheyAreAndItsFloatHeadRunsPacked) {
  namespace qz = compress::quantize;
  torch::manual_seed(14);
  BertModel bert(tiny_bert().classes(3));
  auto m = to_model(bert);
  bert->eval();
  qz::PostTrainingQuantizer quantizer(
      m, qz::QuantizeOptions().method(qz::QuantizeMethod::kDynamic).exclude({"classifier\\.0"}));
  quantizer.prepare();
  quantizer.convert(m);
  ASSERT_EQ(quantizer.summary().int8_layers.size(), 12u);
  ASSERT_TRUE(bert->classifier->as<torch::nn::LinearImpl>(0));
  const auto plan = plan_inference(m, {12}, 4, c10::kCPU, InferenceOptions().dense_linear(DenseLinear::kPacked));
  ASSERT_TRUE(plan.candidate);
  EXPECT_EQ(plan.candidate_path, "packed-linear");
  torch::NoGradGuard no_grad;
  const auto x = padded_ids(6, 12);
  EXPECT_LT(relative_error(plan.candidate(x), m.forward(x)), kMaxFastPathError);
}

// Timed whole against the module's forward, as a classifier is.
TEST(InferencePlan, ABertsChosenPathIsTheFasterOfTheTwoAndNamed) {
  torch::manual_seed(15);
  const auto m = to_model(BertModel(tiny_bert()));
  const auto plan = plan_inference(m, {12}, 4, c10::kCPU, InferenceOptions().dense_linear(DenseLinear::kPacked));
  ASSERT_GT(plan.plain_ms, 0);
  ASSERT_GT(plan.fast_ms, 0);
  EXPECT_EQ(plan.path, plan.fast_ms < plan.plain_ms ? plan.candidate_path : "plain");
}

TEST(InferencePlan, PrunedLinearLayersRunOnTheCsrKernel) {
  torch::manual_seed(4);
  const std::vector<int64_t> shape{1, 28, 28};
  auto c = build_model(MlpOptions().hidden({300, 100}), {shape, 10});
  {
    torch::NoGradGuard no_grad;
    auto first = c->classifier->as<torch::nn::LinearImpl>(0);
    first->weight.mul_(torch::rand_like(first->weight) > 0.9);
  }
  const auto m = to_model(c);
  const auto plan = plan_inference(m, shape, 64, c10::kCPU,
                                   InferenceOptions().measure_sparse(false).dense_linear(DenseLinear::kLibTorch));
  EXPECT_EQ(plan.candidate_path, "csr-linear, linear");  // only the pruned first layer is sparse
  expect_candidate_matches(m, plan, shape, kMaxFastPathError);
}

TEST(InferencePlan, LayersBelowTheSparsityThresholdStayDense) {
  torch::manual_seed(5);
  const std::vector<int64_t> shape{1, 8, 8};
  auto c = build_model(MlpOptions().hidden({32}), {shape, 4});
  {
    torch::NoGradGuard no_grad;
    auto first = c->classifier->as<torch::nn::LinearImpl>(0);
    first->weight.mul_(torch::rand_like(first->weight) > 0.3);  // ~30 % sparse
  }
  const auto plan = plan_inference(to_model(c), shape, 8, c10::kCPU,
                                   InferenceOptions().measure_sparse(false).dense_linear(DenseLinear::kLibTorch));
  EXPECT_EQ(plan.candidate_path, "linear");
}

TEST(InferencePlan, SparseInt8LayersRunOnTheCsrKernelWithinTheirTolerance) {
  torch::manual_seed(6);
  const std::vector<int64_t> shape{1, 12, 12};
  auto c = build_model(MlpOptions().hidden({64, 32}), {shape, 4});
  {
    torch::NoGradGuard no_grad;
    for (const size_t i : {0, 2}) {
      auto l = c->classifier->as<torch::nn::LinearImpl>(i);
      l->weight.mul_(torch::rand_like(l->weight) > 0.9);
    }
  }
  auto m = to_model(c);
  compress::quantize::PostTrainingQuantizer quantizer(m, compress::quantize::QuantizeOptions());
  quantizer.prepare();
  quantizer.calibrate(data::Dataset{torch::randn({256, 1, 12, 12}), torch::randint(0, 4, {256}), {}}, 4, 64);
  quantizer.convert(m);
  const auto plan = plan_inference(m, shape, 16, c10::kCPU, InferenceOptions().measure_sparse(false));
  EXPECT_TRUE(contains(plan.candidate_path, "csr-linear-int8")) << plan.candidate_path;
  expect_candidate_matches(m, plan, shape, kMaxFastPathInt8Error);
}

TEST(InferencePlan, TheChosenPathIsTheFasterOfTheTwoAndNamed) {
  torch::manual_seed(7);
  const std::vector<int64_t> shape{1, 28, 28};
  const auto m = to_model(build_model(ConvNetOptions().channels({8, 16}).fc({32}), {shape, 10}));
  const auto plan = plan_inference(m, shape, 8, c10::kCPU);
  ASSERT_GT(plan.plain_ms, 0);
  ASSERT_GT(plan.fast_ms, 0);
  EXPECT_EQ(plan.path, plan.fast_ms < plan.plain_ms ? plan.candidate_path : "plain");
}

TEST(InferencePlan, FastOffRunsTheModelsOwnForward) {
  const std::vector<int64_t> shape{1, 8, 8};
  const auto m = to_model(build_model(ConvNetOptions().channels({4}).fc({}), {shape, 4}));
  const auto plan = plan_inference(m, shape, 2, c10::kCPU, InferenceOptions().fast(false));
  EXPECT_EQ(plan.path, "plain");
  EXPECT_FALSE(plan.candidate);
}

TEST(InferencePlan, AModuleThatIsNotAClassifierRunsPlain) {
  const auto plan = plan_inference(to_model(torch::nn::Linear(8, 2)), {8}, 4, c10::kCPU);
  EXPECT_EQ(plan.path, "plain");
  EXPECT_FALSE(plan.candidate);
}

TEST(InferencePlan, ABatchOfZeroSamplesIsAnErrorNamingIt) {
  const auto m = to_model(build_model(MlpOptions().hidden({4}), {{1, 2, 2}, 2}));
  try {
    plan_inference(m, {1, 2, 2}, 0, c10::kCPU);
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("inference batch must be > 0, got 0"), std::string::npos) << e.what();
  }
}
