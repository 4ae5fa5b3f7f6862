// Model zoo: PyTorch parameter names, output shapes, and in-place layer replacement.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"
#include "io/state_dict.h"
#include "models/layer_stack.h"
#include "models/registry.h"

using namespace shrink;

namespace {

std::vector<std::string> names(const models::Classifier& m) {
  std::vector<std::string> out;
  for (const auto& e : io::state_dict(*m)) out.push_back(e.name);
  return out;
}

}  // namespace

TEST(Models, MlpNamesMatchTheEquivalentPyTorchModel) {
  const auto m = models::build_model(models::MlpOptions(), {{1, 28, 28}, 10});
  EXPECT_EQ(names(m), (std::vector<std::string>{"classifier.0.weight", "classifier.0.bias", "classifier.2.weight",
                                                "classifier.2.bias", "classifier.4.weight", "classifier.4.bias"}));
  EXPECT_EQ(m->classifier->as<torch::nn::LinearImpl>(0)->weight.sizes(), torch::IntArrayRef({300, 784}));
}

TEST(Models, ConvNetWithBatchNormHasPyTorchBufferNames) {
  const auto m = models::build_model(models::ConvNetOptions().channels({4}).fc({8}), {{1, 8, 8}, 3});
  EXPECT_EQ(names(m), (std::vector<std::string>{"features.0.weight", "features.1.weight", "features.1.bias",
                                                "features.1.running_mean", "features.1.running_var",
                                                "features.1.num_batches_tracked", "classifier.0.weight",
                                                "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"}));
}

TEST(Models, EveryRegisteredArchitectureProducesLogitsPerClassWithDefaultOptions) {
  const auto names = models::ArchitectureRegistry::instance().names();
  ASSERT_GE(names.size(), 3u);
  for (const auto& name : names) {
    const auto schema = models::ArchitectureRegistry::instance().find(name)->options;
    // An architecture that needs a key with no default (torchscript's file) has no default model.
    if (std::any_of(schema->fields.begin(), schema->fields.end(), [](const config::Field& f) { return f.required; }))
      continue;
    YAML::Node options(YAML::NodeType::Map);
    config::fill_defaults(options, *schema);
    // The text encoder takes token ids: without labels it gives one embedding a sentence, with
    // labels one logit a class from its head.
    if (name == "bert") {
      auto m = models::build_model(name, options, {{12}, 0});
      m.module->eval();
      EXPECT_EQ(m.input_dtype, torch::kLong);
      EXPECT_EQ(m.forward(models::placeholder_input(m, {3, 12})).sizes(), torch::IntArrayRef({3, 384}));
      auto classifier = models::build_model(name, options, {{12}, 10});
      classifier.module->eval();
      EXPECT_EQ(classifier.forward(models::placeholder_input(m, {3, 12})).sizes(), torch::IntArrayRef({3, 10}));
      continue;
    }
    auto m = models::build_model(name, options, {{1, 28, 28}, 10});
    m.module->eval();
    EXPECT_EQ(m.forward(torch::zeros({3, 1, 28, 28})).sizes(), torch::IntArrayRef({3, 10})) << name;
  }
}

TEST(Models, ReplaceSwapsTheLayerInTheForwardPathAndTheModuleTree) {
  auto m = models::build_model(models::MlpOptions().hidden({4}), {{3}, 2});
  auto replacement = torch::nn::Linear(4, 2);
  torch::nn::init::zeros_(replacement->weight);
  torch::nn::init::constant_(replacement->bias, 7.0);
  m->classifier->replace(2, torch::nn::AnyModule(replacement));
  EXPECT_TRUE(torch::equal(m->forward(torch::randn({5, 3})), torch::full({5, 2}, 7.0)));
  EXPECT_TRUE(torch::equal(m->named_parameters()["classifier.2.bias"], replacement->bias));
}

TEST(Models, LeNet5RejectsNonImageInput) {
  try {
    models::build_model(models::LeNet5Options(), {{784}, 10});
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lenet5 needs image input"), std::string::npos);
  }
}

// Static int8 leaves float layers after int8 ones (a bert's GELU after its int8 Linear): the stack
// hands them their input dequantized and stays plain, so ONNX export and inference plans walk it.
TEST(LayerStack, ALayerTakingFloatInputGetsAQuantizedInputDequantized) {
  models::LayerStack s;
  s->push_back(torch::nn::GELU());
  s->dequantize_input(0);
  torch::manual_seed(1);
  const auto x = at::quantize_per_tensor(torch::randn({4, 8}), 0.05, 128, at::kQUInt8);
  const auto y = s->forward(x);
  EXPECT_FALSE(y.is_quantized());
  EXPECT_TRUE(torch::equal(y, torch::gelu(x.dequantize())));
  EXPECT_TRUE(s->plain());
  EXPECT_TRUE(s->dequantizes_input(0));
  EXPECT_FALSE(s->dequantizes_input(1));
}

// The stack hands eval-mode Dropout its input back without calling it: it must still drop in
// training.
TEST(LayerStack, DropoutStillDropsInTrainingAndPassesItsInputThroughInEval) {
  torch::manual_seed(3);
  models::LayerStack stack;
  stack->push_back(torch::nn::Dropout(0.5));
  const auto x = torch::ones({64, 64});
  stack->train();
  const auto dropped = stack->forward(x);
  EXPECT_GT((dropped == 0).sum().item<int64_t>(), 0);
  EXPECT_TRUE(((dropped == 0) | (dropped == 2)).all().item<bool>());
  stack->eval();
  EXPECT_TRUE(torch::equal(stack->forward(x), x));
}

namespace {
struct DoublingIdentityImpl : torch::nn::IdentityImpl {
  torch::Tensor forward(const torch::Tensor& x) { return x * 2; }
};
}  // namespace

// Only Identity itself is skipped: a subclass with a forward of its own runs it.
TEST(LayerStack, ASubclassOfIdentityRunsItsOwnForward) {
  models::LayerStack stack;
  stack->push_back(std::make_shared<DoublingIdentityImpl>());
  stack->push_back(torch::nn::Identity());
  EXPECT_TRUE(torch::equal(stack->forward(torch::ones({2, 3})), torch::full({2, 3}, 2.0f)));
}

TEST(LayerStack, MarkingALayerOutsideTheStackForFloatInputIsAnErrorGivingTheIndex) {
  models::LayerStack s;
  s->push_back(torch::nn::GELU());
  try {
    s->dequantize_input(3);
    FAIL() << "index 3 was taken";
  } catch (const core::Error& e) {
    EXPECT_STREQ(e.what(), "layer index 3 out of range: the stack has 1 layers");
  }
}
