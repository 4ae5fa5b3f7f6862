// Models rebuild themselves from any file shrink writes: blueprint in (or beside) the file, the
// open architecture registry, transforms re-applied, buffers kept as buffers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "compress/prune/l1_pruner.h"
#include "helpers.h"
#include "io/state_dict.h"
#include "models/registry.h"
#include "models/restore.h"

using namespace shrink;
using namespace shrink::testing;
namespace fs = std::filesystem;

namespace {

models::Blueprint convnet_blueprint() {
  models::Blueprint b;
  b.arch = "convnet";
  b.options = YAML::Load("{channels: [4, 8], kernel_size: 3, fc: [16], batch_norm: true, dropout: 0.0}");
  b.input = {{1, 8, 8}, 3};
  return b;
}

// A pruned convnet with BN buffers and its blueprint, as a stage leaves them.
std::pair<models::Model, models::Blueprint> pruned_convnet() {
  torch::manual_seed(1);
  auto blueprint = convnet_blueprint();
  auto model = models::build(blueprint);
  compress::prune::L1Pruner pruner(model.module, compress::prune::PruneOptions().sparsity(0.7));
  pruner.prune_to_fraction_of_target(1.0);
  for (const auto& t : pruner.transforms()) blueprint.transforms.push_back(t);
  model.module->eval();
  return {model, blueprint};
}

class RestoreFormat : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(RestoreFormat, RebuildsThePrunedModelWithNoRecipe) {
  const auto dir = scratch_dir("restore_" + GetParam());
  auto [model, blueprint] = pruned_convnet();
  const auto file = dir / ("m." + GetParam());
  io::save_module(file, *model.module, blueprint.to_json());
  const auto restored = models::restore_model(file);
  EXPECT_EQ(restored.blueprint.arch, "convnet");
  ASSERT_EQ(restored.blueprint.transforms.size(), 1u);
  EXPECT_EQ(restored.blueprint.transforms[0].kind, compress::prune::kMaskTransform);
  const auto x = torch::randn({5, 1, 8, 8});
  EXPECT_TRUE(torch::equal(restored.model.forward(x), model.forward(x)));
  EXPECT_TRUE(restored.model.module->named_buffers().contains("features.0.weight_mask"));
}

TEST_P(RestoreFormat, BuffersStayBuffers) {
  const auto dir = scratch_dir("restore_buffers_" + GetParam());
  auto [model, blueprint] = pruned_convnet();
  const auto file = dir / ("m." + GetParam());
  io::save_module(file, *model.module, blueprint.to_json());
  std::map<std::string, bool> expected;
  for (const auto& e : io::state_dict(*model.module)) expected[e.name] = e.is_buffer;
  const auto stored = io::read_stored_file(file).entries;
  ASSERT_EQ(stored.size(), expected.size());
  for (const auto& e : stored) EXPECT_EQ(e.is_buffer, expected.at(e.name)) << e.name;
  EXPECT_TRUE(expected.at("features.1.running_mean"));
  EXPECT_FALSE(expected.at("features.1.weight"));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, RestoreFormat, ::testing::Values("pt", "pth", "h5"));

TEST(Restore, APthWithoutItsSidecarNeedsAModelToLoadInto) {
  const auto dir = scratch_dir("restore_bare_pth");
  auto [model, blueprint] = pruned_convnet();
  io::save_module(dir / "m.pth", *model.module, blueprint.to_json());
  fs::remove(io::pth_sidecar(dir / "m.pth"));
  try {
    models::restore_model(dir / "m.pth");
    FAIL() << "expected a UsageError";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("m.pth: no model description in the file (nor "), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("m.pth.json"), std::string::npos) << e.what();
  }
  // Told the model, it finds the masks by name.
  const auto restored = models::restore_model_as(dir / "m.pth", convnet_blueprint());
  const auto x = torch::randn({2, 1, 8, 8});
  EXPECT_TRUE(torch::equal(restored.model.forward(x), model.forward(x)));
}

TEST(Restore, AnUnregisteredArchitectureSaysToRegisterIt) {
  const auto dir = scratch_dir("restore_unregistered");
  auto [model, blueprint] = pruned_convnet();
  blueprint.arch = "not-registered";
  io::save_module(dir / "m.h5", *model.module, blueprint.to_json());
  try {
    models::restore_model(dir / "m.h5");
    FAIL() << "expected an Error";
  } catch (const core::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(
        msg.find(
            "m.h5: cannot rebuild its model: unknown architecture 'not-registered' (registered: mlp, lenet5, convnet"),
        std::string::npos)
        << msg;
    EXPECT_NE(msg.find("must be registered before it is built or restored"), std::string::npos) << msg;
  }
}

TEST(Restore, AnUnknownTransformIsNamed) {
  const auto dir = scratch_dir("restore_transform");
  auto [model, blueprint] = pruned_convnet();
  blueprint.transforms.push_back({"fuse_everything", nlohmann::json::object()});
  io::save_module(dir / "m.pt", *model.module, blueprint.to_json());
  try {
    models::restore_model(dir / "m.pt");
    FAIL() << "expected an Error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "unknown model transform 'fuse_everything' (known: int8, prune_channels, prune_masks"),
              std::string::npos)
        << e.what();
  }
}

namespace {

struct TwoLayersOptions {
  TORCH_ARG(int64_t, width) = 5;
};

struct TwoLayersImpl : torch::nn::Module {
  TwoLayersImpl(const TwoLayersOptions& o, const models::ModelInput& in)
      : a(register_module("a", torch::nn::Linear(in.shape[0], o.width()))),
        b(register_module("b", torch::nn::Linear(o.width(), in.num_classes))) {}
  at::Tensor forward(at::Tensor x) { return b(torch::relu(a(x))); }
  torch::nn::Linear a, b;
};
TORCH_MODULE(TwoLayers);

}  // namespace

TEST(Registry, AUserModelRegistersBuildsWithDefaultsAndRestores) {
  using O = TwoLayersOptions;
  models::register_architecture("two-layers-test",
                                config::OptionsSpec<O>({SHRINK_OPTION(O, width, config::integer(1))}),
                                [](const O& o, const models::ModelInput& in) { return TwoLayers(o, in); });
  models::Blueprint b;
  b.arch = "two-layers-test";
  config::fill_defaults(b.options, *models::ArchitectureRegistry::instance().find(b.arch)->options);
  EXPECT_EQ(b.options["width"].as<int64_t>(), 5);
  b.input = {{6}, 3};
  torch::manual_seed(2);
  auto model = models::build(b);
  EXPECT_EQ(model.forward(torch::zeros({4, 6})).sizes(), torch::IntArrayRef({4, 3}));
  const auto dir = scratch_dir("registry_user");
  io::save_module(dir / "m.h5", *model.module, b.to_json());
  const auto x = torch::randn({4, 6});
  EXPECT_TRUE(torch::equal(models::restore_model(dir / "m.h5").model.forward(x), model.forward(x)));
}

TEST(Registry, ANameIsRegisteredOnce) {
  try {
    models::register_architecture("mlp",
                                  [](const models::ModelInput& in) { return torch::nn::Linear(in.shape[0], 2); });
    FAIL() << "expected a UsageError";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("architecture 'mlp' is registered already"), std::string::npos) << e.what();
  }
}
