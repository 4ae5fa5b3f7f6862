// Channel pruning: which channels can go (the dependency analysis), how they are ranked, their
// removal (exact), what it costs (FLOPs), and a recipe's channel-pruned files in shrink and PyTorch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "compress/prune/channel_graph.h"
#include "compress/prune/l1_pruner.h"
#include "compress/prune/magnitude.h"
#include "compress/prune/sensitivity.h"
#include "core/error.h"
#include "core/format.h"
#include "data/synthetic.h"
#include "helpers.h"
#include "io/state_dict.h"
#include "models/cost.h"
#include "models/layer_stack.h"
#include "models/residual_block.h"
#include "models/restore.h"
#include "models/zoo.h"
#include "recipe/train_stage.h"
#include "train/trainer.h"

using namespace shrink;
using namespace shrink::compress::prune;
using namespace shrink::testing;
namespace fs = std::filesystem;
namespace nn = torch::nn;
using nlohmann::json;

namespace {

const ChannelGroup* group_of(const ChannelGraph& g, const std::string& producer) {
  for (const auto& x : g.groups) {
    if (x.name() == producer) return &x;
  }
  return nullptr;
}

std::string reason_for(const ChannelGraph& g, const std::string& layer) {
  for (const auto& s : g.skipped) {
    if (s.layer == layer) return s.reason;
  }
  return "";
}

models::Classifier small_convnet(uint64_t seed) {
  torch::manual_seed(seed);
  return models::build_model(models::ConvNetOptions().channels({4, 8}).fc({16}), {{1, 8, 8}, 3});
}

// The UsageError L1Pruner throws for `options` on `module`; "" when it throws none.
std::string pruner_usage_error(std::shared_ptr<nn::Module> module, const PruneOptions& options) {
  try {
    L1Pruner(std::move(module), options);
  } catch (const core::UsageError& e) {
    return e.what();
  }
  return "";
}

// BatchNorm statistics and affine weights away from their defaults, so a wrong channel shows.
void randomise_norms(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& b : m.named_buffers()) {
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.5, 0.5);
  }
  for (auto& p : m.named_parameters()) {
    if (p.value().dim() == 1) p.value().uniform_(-1.0, 1.0);
  }
}

// The logits of `m` on a seeded batch once the pruner's masks are at their target, and again after
// finish removed the channels (the model keeps its smaller layers for the caller to check).
std::pair<at::Tensor, at::Tensor> logits_masked_then_removed(models::Classifier& m, L1Pruner& pruner, uint64_t seed) {
  pruner.prune_to_fraction_of_target(1.0);
  m->eval();
  torch::manual_seed(seed);
  const auto x = torch::randn({5, 1, 8, 8});
  torch::NoGradGuard no_grad;
  const auto masked = m->forward(x);
  auto model = models::to_model(m);
  pruner.finish(model);
  return {masked, m->forward(x)};
}

// A cost target's pruner run to its end: the ratio it chose (inside (0, cap)), channels removed.
double prune_and_remove(L1Pruner& pruner, models::Model model, double cap) {
  const double ratio = pruner.cost_sparsity();
  EXPECT_GT(ratio, 0.0);
  EXPECT_LT(ratio, cap);
  pruner.prune_to_fraction_of_target(1.0);
  pruner.finish(model);
  return ratio;
}

}  // namespace

TEST(ChannelGraph, AConvnetsLayersFeedTheirConsumersThroughBatchNormPoolingAndTheFlatten) {
  auto m = small_convnet(1);
  const auto g = channel_graph(*m);
  ASSERT_EQ(g.groups.size(), 3u);
  const auto* conv1 = group_of(g, "features.0");
  ASSERT_TRUE(conv1);
  EXPECT_EQ(conv1->channels, 4);
  EXPECT_EQ(conv1->followers, std::vector<std::string>{"features.1"});
  EXPECT_EQ(conv1->consumers, (std::vector<ChannelConsumer>{{"features.4", 1}}));
  // 8 channels of 2 × 2 after two poolings of an 8 × 8 input: 4 features each.
  const auto* conv2 = group_of(g, "features.4");
  ASSERT_TRUE(conv2);
  EXPECT_EQ(conv2->consumers, (std::vector<ChannelConsumer>{{"classifier.0", 4}}));
  const auto* fc = group_of(g, "classifier.0");
  ASSERT_TRUE(fc);
  EXPECT_EQ(fc->consumers, (std::vector<ChannelConsumer>{{"classifier.2", 1}}));
  EXPECT_EQ(reason_for(g, "classifier.2"), kModelOutputs);
}

TEST(ChannelGraph, AResNetBlocksInnerChannelsArePrunableAndItsResidualStreamIsLeftWholeWithTheReason) {
  torch::manual_seed(2);
  auto m = models::build_model(models::ResNetOptions().widths({4, 8}).blocks(1), {{1, 8, 8}, 3});
  const auto g = channel_graph(*m);
  std::vector<std::string> producers;
  for (const auto& x : g.groups) producers.push_back(x.name());
  EXPECT_EQ(producers, (std::vector<std::string>{"features.3.body.0", "features.4.body.0"}));
  EXPECT_EQ(group_of(g, "features.4.body.0")->followers, std::vector<std::string>{"features.4.body.1"});
  EXPECT_EQ(group_of(g, "features.4.body.0")->consumers, (std::vector<ChannelConsumer>{{"features.4.body.3", 1}}));
  EXPECT_TRUE(contains(reason_for(g, "features.3.body.3"), "join a residual add in 'features.3'"))
      << reason_for(g, "features.3.body.3");
  EXPECT_TRUE(contains(reason_for(g, "features.4.shortcut.0"), "join a residual add in 'features.4'"));
  EXPECT_TRUE(contains(reason_for(g, "features.0"), "enter the residual block 'features.3'"))
      << reason_for(g, "features.0");
  // Left whole because residual: whole asks it (the pruner warns about those in one line).
  for (const auto& s : g.skipped) EXPECT_EQ(s.residual, s.layer != "classifier.0") << s.layer;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

models::Classifier small_resnet(uint64_t seed) {
  torch::manual_seed(seed);
  return models::build_model(models::ResNetOptions().widths({4, 8}).blocks(1), {{1, 8, 8}, 3});
}

TEST(ChannelGraph, ResidualTogetherMakesOneGroupOfEveryLayerThatWritesOrReadsAStagesResidualStream) {
  auto m = small_resnet(2);
  const auto g = channel_graph(*m, ResidualChannels::kTogether);
  std::vector<std::string> names;
  for (const auto& x : g.groups) names.push_back(x.name());
  EXPECT_EQ(names,
            (std::vector<std::string>{"features.0", "features.3.body.0", "features.4.body.0", "features.4.body.3"}));
  // Stage 1: the stem and the identity block's last conv write it; both blocks read it.
  const auto* stem = group_of(g, "features.0");
  ASSERT_TRUE(stem);
  EXPECT_EQ(stem->producers, (std::vector<std::string>{"features.0", "features.3.body.3"}));
  EXPECT_EQ(sorted(stem->followers), (std::vector<std::string>{"features.1", "features.3.body.4"}));
  EXPECT_EQ(stem->consumers, (std::vector<ChannelConsumer>{
                                 {"features.3.body.0", 1}, {"features.4.body.0", 1}, {"features.4.shortcut.0", 1}}));
  // Stage 2: the strided block's last conv and its projection; the head reads it after pooling.
  const auto* stage2 = group_of(g, "features.4.body.3");
  ASSERT_TRUE(stage2);
  EXPECT_EQ(stage2->producers, (std::vector<std::string>{"features.4.body.3", "features.4.shortcut.0"}));
  EXPECT_EQ(sorted(stage2->followers), (std::vector<std::string>{"features.4.body.4", "features.4.shortcut.1"}));
  EXPECT_EQ(stage2->consumers, (std::vector<ChannelConsumer>{{"classifier.0", 1}}));
  EXPECT_EQ(reason_for(g, "classifier.0"), kModelOutputs);
  EXPECT_EQ(g.skipped.size(), 1u);
}

TEST(ChannelPruning, ResidualChannelsPrunedTogetherAndRemovedLeaveTheLogitsAsTheMaskedModelGaveThem) {
  auto m = small_resnet(21);
  randomise_norms(*m);
  L1Pruner pruner(
      m.ptr(), PruneOptions().structure(PruneStructure::kChannels).residual(ResidualChannels::kTogether).sparsity(0.5));
  const auto [masked, removed] = logits_masked_then_removed(m, pruner, 22);
  EXPECT_EQ(m->features->as<nn::Conv2dImpl>(0)->weight.sizes(), (std::vector<int64_t>{2, 1, 3, 3}));
  const auto block = [&](size_t i) { return m->features->as<models::ResidualBlockImpl>(i); };
  EXPECT_EQ(block(3)->body->as<nn::Conv2dImpl>(3)->weight.sizes(), (std::vector<int64_t>{2, 2, 3, 3}));
  EXPECT_EQ(block(4)->body->as<nn::Conv2dImpl>(0)->weight.sizes(), (std::vector<int64_t>{4, 2, 3, 3}));
  EXPECT_EQ(block(4)->shortcut->as<nn::Conv2dImpl>(0)->weight.sizes(), (std::vector<int64_t>{4, 2, 1, 1}));
  EXPECT_EQ(block(4)->shortcut->as<nn::BatchNorm2dImpl>(1)->running_mean.sizes(), (std::vector<int64_t>{4}));
  EXPECT_EQ(m->classifier->as<nn::LinearImpl>(0)->weight.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(torch::allclose(removed, masked, 1e-5, 1e-5)) << (removed - masked).abs().max();
}

TEST(ChannelPruning, AResidualGroupRanksItsChannelsByEachProducersNormsOverTheirMean) {
  // The stem's norms are 100x the block conv's: raw sums would follow the stem alone. Scaled by
  // each layer's mean, channel 3 (strong in the block conv, weak in the stem) outranks channel 0.
  auto m = small_resnet(23);
  {
    torch::NoGradGuard no_grad;
    auto stem = m->features->as<nn::Conv2dImpl>(0)->weight;
    auto last = m->features->as<models::ResidualBlockImpl>(3)->body->as<nn::Conv2dImpl>(3)->weight;
    for (int64_t c = 0; c < 4; ++c) {
      stem[c].fill_(100.0 * std::vector<double>{1.0, 3.0, 3.0, 0.9}[static_cast<size_t>(c)]);
      last[c].fill_(std::vector<double>{1.0, 3.0, 3.0, 3.0}[static_cast<size_t>(c)]);
    }
  }
  L1Pruner pruner(m.ptr(), PruneOptions()
                               .structure(PruneStructure::kChannels)
                               .residual(ResidualChannels::kTogether)
                               .include({"features\\.0\\.", "features\\.3\\.body\\.3\\."})
                               .sparsity(0.25));
  pruner.prune_to_fraction_of_target(1.0);
  ASSERT_EQ(pruner.channel_groups().size(), 1u);
  EXPECT_EQ(pruner.kept_channels().at(0).kept, (std::vector<int64_t>{1, 2, 3}));
}

TEST(ChannelPruning, AnOverrideMatchingAnyProducerOfAResidualStreamSetsTheStreamsTarget) {
  auto m = small_resnet(26);
  L1Pruner pruner(m.ptr(), PruneOptions()
                               .structure(PruneStructure::kChannels)
                               .residual(ResidualChannels::kTogether)
                               .sparsity(0.5)
                               .overrides({{"shortcut", 0.75}}));
  pruner.prune_to_fraction_of_target(1.0);
  std::map<std::string, size_t> kept;
  for (const auto& r : pruner.kept_channels()) kept[r.group.name()] = r.kept.size();
  // Stage 2's stream (its first producer is the block's last conv, the projection matches): 8 → 2.
  EXPECT_EQ(kept["features.4.body.3"], 2u);
  EXPECT_EQ(kept["features.0"], 2u);  // 4 → 2 at the stage's 0.5
  EXPECT_EQ(kept["features.4.body.0"], 4u);
}

TEST(ChannelPruning, IncludingOnlySomeProducersOfAResidualStreamIsAnErrorNamingTheOneLeftOut) {
  const auto error = pruner_usage_error(small_resnet(24).ptr(), PruneOptions()
                                                                    .structure(PruneStructure::kChannels)
                                                                    .residual(ResidualChannels::kTogether)
                                                                    .include({"features\\.0\\.weight"}));
  EXPECT_TRUE(contains(error,
                       "the output channels of 'features.0' cannot be removed: a residual add joins its channels "
                       "with 'features.3.body.3', which the selection leaves out"))
      << error;
}

TEST(Sensitivity, ResidualTogetherSweepsEachResidualStreamAsOneUnitAndRestoresIt) {
  auto m = small_resnet(25);
  randomise_norms(*m);
  m->eval();
  const auto before = io::state_dict(*m);
  const auto data = data::make_synthetic(data::SyntheticOptions().samples(64).classes(3).shape({1, 8, 8}).seed(5));
  const auto forward = [&](const at::Tensor& x) { return m->forward(x); };
  const auto r = analyze_sensitivity(
      *m, forward, data, PruneOptions().structure(PruneStructure::kChannels).residual(ResidualChannels::kTogether),
      {0.0, 0.75}, false);
  EXPECT_EQ(r.tensors,
            (std::vector<std::string>{"features.0", "features.3.body.0", "features.4.body.0", "features.4.body.3"}));
  ASSERT_EQ(r.points.size(), 8u);
  EXPECT_DOUBLE_EQ(r.points[0].accuracy, r.baseline_accuracy);
  // Three of the stem stream's four channels gone from the stem and the block that adds to it.
  EXPECT_NE(r.points[1].loss, r.baseline_loss);
  const auto after = io::state_dict(*m);
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(before[i].tensor, after[i].tensor)) << before[i].name;
  }
}

TEST(ChannelPruning, AFilesGroupWithAConsumerReadingNoInputsIsRefusedNamingTheConsumer) {
  const json group = {{"producers", {"features.0"}},
                      {"channels", 4},
                      {"followers", json::array()},
                      {"consumers", {{{"layer", "features.4"}, {"group", 0}}}},
                      {"kept", {0}}};
  try {
    removals_from_json({{"groups", {group}}});
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "group 'features.0' has consumer 'features.4' reading 0 inputs a channel"))
        << e.what();
  }
}

TEST(ChannelPruning, AFileWrittenWithOneProducerAndOneConsumerPerGroupStillReads) {
  const json legacy = {{"groups",
                        {{{"producer", "features.0"},
                          {"channels", 4},
                          {"followers", {"features.1"}},
                          {"consumer", "classifier.0"},
                          {"consumer_group", 9},
                          {"kept", {0, 2}}}}}};
  const auto removals = removals_from_json(legacy);
  ASSERT_EQ(removals.size(), 1u);
  EXPECT_EQ(removals[0].group.producers, std::vector<std::string>{"features.0"});
  EXPECT_EQ(removals[0].group.consumers, (std::vector<ChannelConsumer>{{"classifier.0", 9}}));
  EXPECT_EQ(removals[0].kept, (std::vector<int64_t>{0, 2}));
  // What to_json writes reads back the same.
  const auto again = removals_from_json(to_json(removals));
  EXPECT_EQ(again[0].group.producers, removals[0].group.producers);
  EXPECT_EQ(again[0].group.followers, removals[0].group.followers);
  EXPECT_EQ(again[0].group.consumers, removals[0].group.consumers);
  EXPECT_EQ(again[0].kept, removals[0].kept);
}

TEST(ChannelGraph, ADepthwiseConvFollowsItsProducersChannelsInAUsersLayerStack) {
  models::LayerStack net;
  net->push_back(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1)));
  net->push_back(nn::BatchNorm2d(8));
  net->push_back(nn::ReLU());
  net->push_back(nn::Conv2d(nn::Conv2dOptions(8, 8, 3).padding(1).groups(8)));
  net->push_back(nn::ReLU());
  net->push_back(nn::Conv2d(nn::Conv2dOptions(8, 4, 1)));
  net->push_back(nn::Flatten());
  net->push_back(nn::Linear(4 * 6 * 6, 5));
  const auto g = channel_graph(*net);
  ASSERT_EQ(g.groups.size(), 2u);
  EXPECT_EQ(g.groups[0].followers, (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(g.groups[0].consumers, (std::vector<ChannelConsumer>{{"5", 1}}));
  EXPECT_EQ(g.groups[1].consumers, (std::vector<ChannelConsumer>{{"7", 36}}));
  EXPECT_EQ(reason_for(g, "7"), kModelOutputs);
}

TEST(ChannelGraph, ALayerOnTheWayThatDoesNotKeepZeroAtZeroSkipsTheProducerNamingIt) {
  models::LayerStack net;
  net->push_back(nn::Conv2d(nn::Conv2dOptions(1, 4, 3)));
  net->push_back(nn::Sigmoid());
  net->push_back(nn::Conv2d(nn::Conv2dOptions(4, 2, 3)));
  const auto g = channel_graph(*net);
  EXPECT_TRUE(group_of(g, "0") == nullptr);
  EXPECT_TRUE(contains(reason_for(g, "0"), "'1' (torch::nn::SigmoidImpl)")) << reason_for(g, "0");
}

TEST(ChannelPruning, RemovingThePrunedChannelsLeavesTheLogitsAsTheMaskedModelGaveThem) {
  auto m = small_convnet(3);
  randomise_norms(*m);
  L1Pruner pruner(m.ptr(), PruneOptions().structure(PruneStructure::kChannels).sparsity(0.5));
  const auto [masked, removed] = logits_masked_then_removed(m, pruner, 4);
  EXPECT_EQ(m->features->as<nn::Conv2dImpl>(0)->weight.sizes(), (std::vector<int64_t>{2, 1, 3, 3}));
  EXPECT_EQ(m->features->as<nn::BatchNorm2dImpl>(1)->running_var.sizes(), (std::vector<int64_t>{2}));
  EXPECT_EQ(m->features->as<nn::Conv2dImpl>(4)->weight.sizes(), (std::vector<int64_t>{4, 2, 3, 3}));
  EXPECT_EQ(m->classifier->as<nn::LinearImpl>(0)->weight.sizes(), (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(m->classifier->as<nn::LinearImpl>(2)->weight.sizes(), (std::vector<int64_t>{3, 8}));
  EXPECT_TRUE(torch::allclose(removed, masked, 1e-5, 1e-5)) << (removed - masked).abs().max();
}

TEST(ChannelPruning, ChannelsAreRankedByTheNormOfTheirFilterL1OrL2AsAsked) {
  // Channel 0: one large weight (L1 3, L2 3); channel 1: many small ones (L1 4.5, L2 1.5); the
  // other two far below both.
  for (const auto method : {PruneMethod::kL1, PruneMethod::kL2}) {
    auto m = small_convnet(5);
    {
      torch::NoGradGuard no_grad;
      auto w = m->features->as<nn::Conv2dImpl>(0)->weight;
      w.zero_();
      w[0][0][0][0] = 3.0;
      w[1].fill_(0.5);
      w[2][0][1][1] = 0.1;
      w[3][0][2][2] = 0.2;
    }
    L1Pruner pruner(m.ptr(), PruneOptions()
                                 .structure(PruneStructure::kChannels)
                                 .method(method)
                                 .include({"features\\.0\\.weight"})
                                 .sparsity(0.75));
    pruner.prune_to_fraction_of_target(1.0);
    const auto kept = pruner.kept_channels().at(0).kept;
    EXPECT_EQ(kept, std::vector<int64_t>{method == PruneMethod::kL1 ? 1 : 0}) << core::name_of(method);
  }
}

TEST(ChannelPruning, EveryLayerKeepsOneChannelWhateverTheTarget) {
  auto m = small_convnet(6);
  L1Pruner pruner(m.ptr(), PruneOptions().structure(PruneStructure::kChannels).sparsity(0.99));
  pruner.prune_to_fraction_of_target(1.0);
  for (const auto& r : pruner.kept_channels()) EXPECT_EQ(r.kept.size(), 1u) << r.group.name();
}

TEST(ChannelPruning, PrunedChannelsStayPrunedAsTheScheduleRaisesTheTarget) {
  auto m = small_convnet(7);
  L1Pruner pruner(m.ptr(), PruneOptions().structure(PruneStructure::kChannels).sparsity(0.5));
  pruner.prune_to_fraction_of_target(0.5);
  const auto first = pruner.kept_channels();
  {
    // Training moves the weights: the zeroed channels come back to life unless masks hold.
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.add_(torch::randn_like(p));
  }
  pruner.apply_masks();
  pruner.prune_to_fraction_of_target(1.0);
  const auto second = pruner.kept_channels();
  for (size_t i = 0; i < first.size(); ++i) {
    for (const auto c : second[i].kept) {
      EXPECT_NE(std::find(first[i].kept.begin(), first[i].kept.end(), c), first[i].kept.end())
          << first[i].group.name() << " revived channel " << c;
    }
    EXPECT_EQ(static_cast<int64_t>(second[i].kept.size()), second[i].group.channels / 2);
  }
}

TEST(ChannelPruning, GlobalScopeRanksNormsDividedByTheirLayersMean) {
  // Layer 0's norms are all 10x layer 4's: raw norms would take every channel from layer 4.
  auto m = small_convnet(8);
  {
    torch::NoGradGuard no_grad;
    auto w0 = m->features->as<nn::Conv2dImpl>(0)->weight;
    auto w4 = m->features->as<nn::Conv2dImpl>(4)->weight;
    for (int64_t c = 0; c < 4; ++c) w0[c].fill_(10.0 * (c + 1));
    for (int64_t c = 0; c < 8; ++c) w4[c].fill_(0.1 * (c % 4 + 1));
  }
  L1Pruner pruner(m.ptr(), PruneOptions()
                               .structure(PruneStructure::kChannels)
                               .scope(PruneScope::kGlobal)
                               .include({"features\\.[04]\\.weight"})
                               .sparsity(0.5));
  pruner.prune_to_fraction_of_target(1.0);
  const auto kept = pruner.kept_channels();
  // Normalised, both layers rank 1..4 alike: each loses its lower half.
  EXPECT_EQ(kept[0].kept, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(kept[1].kept, (std::vector<int64_t>{2, 3, 6, 7}));
}

TEST(ChannelPruning, IncludingALayerWhoseChannelsCannotBeRemovedIsAnErrorWithTheReason) {
  const auto error = pruner_usage_error(
      small_convnet(9).ptr(), PruneOptions().structure(PruneStructure::kChannels).include({"classifier\\.2\\.weight"}));
  EXPECT_TRUE(contains(error,
                       "the output channels of 'classifier.2' cannot be removed: its outputs are the "
                       "model's outputs"))
      << error;
}

TEST(ModelCost, MultiplyAddsAreOutputElementsTimesEachOutputsFanIn) {
  auto m = small_convnet(10);
  const auto cost = models::count_cost(models::to_model(m), {1, 8, 8});
  ASSERT_TRUE(cost.has_value());
  ASSERT_EQ(cost->layers.size(), 4u);
  EXPECT_EQ(cost->layers[0].macs, 4 * 8 * 8 * 9);      // 1 → 4 channels, 3 × 3, 8 × 8 outputs
  EXPECT_EQ(cost->layers[1].macs, 8 * 4 * 4 * 4 * 9);  // 4 → 8 on 4 × 4
  EXPECT_EQ(cost->layers[2].macs, 32 * 16);
  EXPECT_EQ(cost->layers[3].macs, 16 * 3);
  EXPECT_EQ(cost->flops(), 2 * (2304 + 4608 + 512 + 48));
}

// The synthetic recipe with a convnet, pruned by channel and then made int8.
// A channel-pruned .pth built by docs/python/shrink_models in PyTorch and run on a probe shrink
// wrote: {"max_abs_diff", "shapes"}, or {"error": the script's output} when it failed.
json load_in_pytorch(const fs::path& pth, const fs::path& probe) {
  write_probe(pth, probe);
  const auto py = run_command("/usr/bin/python3 -W ignore " + tests_dir() + "/python/channel_pruned.py " +
                              pth.string() + " " + probe.string() + " 2>&1");
  if (py.exit_code != 0) return json{{"error", py.output}};
  return last_json_line(py.output);
}

std::string channel_recipe(const std::string& prune_keys, const std::string& after = "") {
  auto text = synthetic_recipe(
      2, "  - prune:\n      model: small\n      structure: channels\n" + prune_keys +
             "      finetune: {epochs: 1, batch_size: 32, optimizer: {name: sgd, lr: 0.02}}\n" + after);
  text.replace(text.find("    arch: mlp\n    hidden: [32, 16]\n"), 35,
               "    arch: convnet\n    channels: [8, 16]\n    fc: [32]\n");
  return text;
}

TEST(ChannelPruningRecipe, AChannelPrunedConvnetsFilesRestoreWithNoRecipeAndLoadIntoThePythonClass) {
  const auto dir = scratch_dir("channel_recipe");
  write_file(dir / "recipe.yaml",
             channel_recipe("      sparsity: 0.5\n", "  - quantize:\n      model: small\n      method: ptq_static\n"));
  const auto run =
      run_shrink("run --no-progress --out " + (dir / "run").string() + " " + (dir / "recipe.yaml").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto report = read_json(dir / "run" / "report.json");
  const auto& trained = report["stages"][0];
  const auto& pruned = report["stages"][1];
  EXPECT_EQ(pruned["pruning"]["structure"], "channels");
  EXPECT_EQ(pruned["pruning"]["layers"][1]["kept_channels"], 8) << pruned["pruning"].dump();
  // Half the channels of each conv and of the hidden Linear: about a quarter of the multiply-adds.
  const double flops_ratio = pruned["metrics"]["flops"].get<double>() / trained["metrics"]["flops"].get<double>();
  EXPECT_GT(flops_ratio, 0.2);
  EXPECT_LT(flops_ratio, 0.35);
  EXPECT_LT(pruned["metrics"]["params"].get<int64_t>(), trained["metrics"]["params"].get<int64_t>() / 2);

  // Each file rebuilds the smaller model with no recipe and gives the reported accuracy.
  for (const auto& format : {"pt", "h5"}) {
    const auto file = dir / "run" / pruned["artifacts"][format].get<std::string>();
    const auto eval = run_shrink("eval " + file.string());
    ASSERT_EQ(eval.exit_code, 0) << eval.output;
    EXPECT_TRUE(
        contains(eval.output, core::format_double("accuracy %.4f", pruned["metrics"]["accuracy"].get<double>())))
        << format << ": " << eval.output;
  }
  // The int8 stage after it quantized the smaller layers.
  const auto& int8 = report["stages"][2];
  EXPECT_EQ(int8["quantization"]["int8_layers"].size(), 4u) << int8.dump();
  EXPECT_EQ(run_shrink("eval " + (dir / "run" / int8["artifacts"]["pt"].get<std::string>()).string()).exit_code, 0);

  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto pth = dir / "run" / pruned["artifacts"]["pth"].get<std::string>();
  const auto out = load_in_pytorch(pth, dir / "probe.pth");
  ASSERT_FALSE(out.contains("error")) << out["error"].get<std::string>();
  EXPECT_LE(out["max_abs_diff"].get<double>(), 1e-5) << out.dump();
  EXPECT_EQ(out["shapes"]["features.0.weight"], json::array({4, 1, 3, 3})) << out.dump();
  EXPECT_EQ(out["shapes"]["classifier.0.weight"], json::array({16, 32})) << out.dump();
}

TEST(ChannelPruningRecipe, AResNetWithResidualChannelsPrunedTogetherRestoresAndLoadsIntoThePythonClass) {
  const auto dir = scratch_dir("channel_recipe_residual");
  auto text = channel_recipe("      sparsity: 0.5\n      residual: together\n",
                             "  - quantize:\n      model: small\n      method: ptq_static\n");
  const std::string convnet = "    arch: convnet\n    channels: [8, 16]\n    fc: [32]\n";
  text.replace(text.find(convnet), convnet.size(), "    arch: resnet\n    widths: [4, 8]\n    blocks: 1\n");
  write_file(dir / "recipe.yaml", text);
  const auto run =
      run_shrink("run --no-progress --out " + (dir / "run").string() + " " + (dir / "recipe.yaml").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto report = read_json(dir / "run" / "report.json");
  const auto& pruned = report["stages"][1];
  // The stem and the identity block's last conv: one residual stream, half its 4 channels kept.
  std::map<std::string, int64_t> kept;
  for (const auto& l : pruned["pruning"]["layers"]) kept[l["name"].get<std::string>()] = l["kept_channels"];
  EXPECT_EQ(kept["features.0.weight"], 2) << pruned["pruning"].dump();
  EXPECT_EQ(kept["features.3.body.3.weight"], 2) << pruned["pruning"].dump();
  EXPECT_EQ(kept["features.4.shortcut.0.weight"], 4) << pruned["pruning"].dump();
  const auto file = dir / "run" / pruned["artifacts"]["pt"].get<std::string>();
  const auto eval = run_shrink("eval " + file.string());
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_TRUE(contains(eval.output, core::format_double("accuracy %.4f", pruned["metrics"]["accuracy"].get<double>())))
      << eval.output;
  // int8 after it: the narrower residual adds quantize as the others do.
  const auto& int8 = report["stages"][2];
  const auto int8_eval = run_shrink("eval " + (dir / "run" / int8["artifacts"]["pt"].get<std::string>()).string());
  ASSERT_EQ(int8_eval.exit_code, 0) << int8_eval.output;
  EXPECT_TRUE(
      contains(int8_eval.output, core::format_double("accuracy %.4f", int8["metrics"]["accuracy"].get<double>())))
      << int8_eval.output;

  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto pth = dir / "run" / pruned["artifacts"]["pth"].get<std::string>();
  const auto out = load_in_pytorch(pth, dir / "probe.pth");
  ASSERT_FALSE(out.contains("error")) << out["error"].get<std::string>();
  EXPECT_LE(out["max_abs_diff"].get<double>(), 1e-5) << out.dump();
  EXPECT_EQ(out["shapes"]["features.0.weight"], json::array({2, 1, 3, 3})) << out.dump();
  EXPECT_EQ(out["shapes"]["features.4.shortcut.0.weight"], json::array({4, 2, 1, 1})) << out.dump();
  EXPECT_EQ(out["shapes"]["classifier.0.weight"], json::array({4, 4})) << out.dump();
}

TEST(ChannelPruningCli, SensitivityRefusesResidualWithoutChannels) {
  const auto dir = scratch_dir("sensitivity_residual");
  write_file(dir / "recipe.yaml", channel_recipe("      sparsity: 0.5\n"));
  const auto r = run_shrink("sensitivity " + (dir / "recipe.yaml").string() + " --model small --residual together");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--residual is for --structure channels")) << r.output;
}

TEST(ChannelPruningRecipe, QatInTheRunThatRemovesChannelsIsRefusedBeforeAnyWork) {
  auto text = synthetic_recipe(
      2,
      "  - train:\n      model: small\n      epochs: 1\n      batch_size: 32\n      optimizer: {name: sgd, lr: 0.01}\n"
      "      modifiers:\n        - prune: {structure: channels, sparsity: 0.5}\n        - qat: {}\n");
  const auto recipe = write_recipe("channels_qat", text);
  const auto r = run_shrink("validate " + recipe.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output,
                       "modifiers.0 removes channels as the run ends, which modifiers.1's int8 conversion "
                       "cannot follow"))
      << r.output;
}

TEST(ChannelPruning, ARemovalMadeForOtherLayerSizesIsAnErrorNamingTheLayer) {
  auto m = small_convnet(12);
  ChannelRemoval r;
  r.group = {{"features.0"}, 6, {"features.1"}, {{"features.4", 1}}};  // the conv has 4 channels
  r.kept = {0, 1};
  try {
    remove_channels(*m, {r});
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "'features.0' has 4 output channels, the removal was made for 6")) << e.what();
  }
  // Nothing was resized.
  EXPECT_EQ(m->features->as<nn::Conv2dImpl>(0)->weight.size(0), 4);
}

TEST(ChannelPruning, AFlopsTargetPrunesEveryLayerByTheSmallestRatioThatReachesIt) {
  auto m = small_convnet(13);
  const auto model = models::to_model(m);
  const double dense = static_cast<double>(models::count_cost(model, {1, 8, 8})->macs);
  L1Pruner pruner(model, {1, 8, 8}, PruneOptions().structure(PruneStructure::kChannels).sparsity(0.9).flops(0.5));
  const double ratio = prune_and_remove(pruner, model, 0.9);
  const double after = static_cast<double>(models::count_cost(model, {1, 8, 8})->macs);
  EXPECT_LE(after / dense, 0.5);
  // Every layer kept what the one ratio keeps of it.
  const auto keep = [&](int64_t channels) { return channels - entries_to_prune(ratio, channels); };
  std::vector<int64_t> kept;
  for (const auto& r : pruner.kept_channels()) kept.push_back(static_cast<int64_t>(r.kept.size()));
  EXPECT_EQ(kept, (std::vector<int64_t>{keep(4), keep(8), keep(16)}));
  // The smallest such ratio: capped a little below it, the target is out of reach.
  EXPECT_THROW(L1Pruner(models::to_model(small_convnet(13)), {1, 8, 8},
                        PruneOptions().structure(PruneStructure::kChannels).sparsity(ratio - 1e-6).flops(0.5)),
               core::UsageError);
}

TEST(ChannelPruning, AFlopsTargetOutOfReachUnderTheSparsityCapIsAnErrorSayingWhatItLeaves) {
  auto m = small_convnet(14);
  try {
    L1Pruner(models::to_model(m), {1, 8, 8},
             PruneOptions().structure(PruneStructure::kChannels).sparsity(0.25).flops(0.1));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(
        contains(e.what(), "prune: flops 0.1 is out of reach with at most sparsity 0.25 of each layer's channels"))
        << e.what();
  }
}

TEST(ChannelPruning, AFilesRemovalWithAChannelOutOfRangeIsRefusedNamingTheLayer) {
  models::Blueprint b;
  b.arch = "convnet";
  b.options = YAML::Load("{channels: [4, 8], fc: [16]}");
  b.input = {{1, 8, 8}, 3};
  const json group = {{"producer", "features.0"}, {"channels", 4},       {"followers", {"features.1"}},
                      {"consumer", "features.4"}, {"consumer_group", 1}, {"kept", {0, 7}}};
  b.transforms.push_back({kChannelTransform, {{"groups", json::array({group})}}});
  try {
    models::build(b);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_TRUE(contains(e.what(), "the kept channels of 'features.0' must ascend within [0, 4)")) << e.what();
  }
}

TEST(ChannelPruning, AParamsTargetPrunesEveryLayerByTheSmallestRatioThatLeavesThatShareOfTheWeights) {
  const auto model = models::to_model(small_convnet(15));
  const auto weights = [](const models::Model& m) {
    int64_t n = 0;
    const auto cost = models::count_cost(m, {1, 8, 8});  // held: a range-for would outlive the temporary
    for (const auto& l : cost->layers) n += l.weights;
    return static_cast<double>(n);
  };
  const double dense = weights(model);
  L1Pruner pruner(model, {1, 8, 8}, PruneOptions().structure(PruneStructure::kChannels).sparsity(0.9).params(0.4));
  const double ratio = prune_and_remove(pruner, model, 0.9);
  EXPECT_LE(weights(model) / dense, 0.4);
  EXPECT_THROW(L1Pruner(models::to_model(small_convnet(15)), {1, 8, 8},
                        PruneOptions().structure(PruneStructure::kChannels).sparsity(ratio - 1e-6).params(0.4)),
               core::UsageError);
}

TEST(ChannelPruning, TwoCostTargetsTogetherAreRefused) {
  for (const auto& o : {PruneOptions().flops(0.5).params(0.5), PruneOptions().params(0.5).latency_ms(2)}) {
    try {
      validate(PruneOptions(o).structure(PruneStructure::kChannels));
      FAIL() << "expected an error";
    } catch (const core::UsageError& e) {
      EXPECT_TRUE(contains(e.what(), "give one cost target of flops, params and latency_ms, not several")) << e.what();
    }
  }
}

// A stand-in for timing: "milliseconds" = the channels the candidate keeps over every group (the
// dense model's when nothing is removed), so the search's answer can be checked exactly.
struct KeptChannelsProbe {
  int64_t dense = 0;
  int calls = 0;
  double operator()(const std::vector<ChannelRemoval>& removals) {
    ++calls;
    if (removals.empty()) return static_cast<double>(dense);
    int64_t kept = 0;
    for (const auto& r : removals) {
      EXPECT_FALSE(r.group.producers.empty());
      kept += static_cast<int64_t>(r.kept.size());
    }
    return static_cast<double>(kept);
  }
};

int64_t kept_over(const std::vector<int64_t>& channels, double ratio) {
  int64_t kept = 0;
  for (const auto c : channels) kept += c - std::min(entries_to_prune(ratio, c), c - 1);
  return kept;
}

TEST(ChannelPruning, ALatencyTargetTakesTheSmallestRatioTheProbeTimesWithinItToASixtyFourthOfTheCap) {
  const auto model = models::to_model(small_convnet(17));
  auto probe = std::make_shared<KeptChannelsProbe>();
  probe->dense = 4 + 8 + 16;
  L1Pruner pruner(model, {1, 8, 8},
                  PruneOptions().structure(PruneStructure::kChannels).sparsity(0.8).latency_ms(14).latency_batch(8),
                  [probe](const std::vector<ChannelRemoval>& r) { return (*probe)(r); });
  EXPECT_EQ(probe->calls, 0);  // the search waits for training to begin (or the first prune)
  pruner.choose_latency_ratio();
  const double ratio = pruner.cost_sparsity();
  const std::vector<int64_t> channels{4, 8, 16};
  EXPECT_LE(kept_over(channels, ratio), 14);
  EXPECT_GT(kept_over(channels, ratio - 0.8 / 64), 14) << "ratio " << ratio;
  EXPECT_EQ(pruner.dense_latency_ms(), 28);
  EXPECT_EQ(pruner.target_latency_ms(), static_cast<double>(kept_over(channels, ratio)));
  EXPECT_EQ(probe->calls, 2 + 6);  // dense, the cap, six halvings
  const auto summary = std::dynamic_pointer_cast<const PruneSummary>(pruner.summary());
  const auto j = summary->to_json();
  EXPECT_EQ(j["latency_target_ms"], 14);
  EXPECT_EQ(j["latency_batch"], 8);
  EXPECT_EQ(j["latency_sparsity"], ratio);
  EXPECT_EQ(PruneSummary::from_json(j).to_json(), j);
}

TEST(ChannelPruning, AResumedLatencyTargetKeepsTheInterruptedRunsChoiceWithoutTimingAgain) {
  const auto options = PruneOptions().structure(PruneStructure::kChannels).sparsity(0.8).latency_ms(14);
  L1Pruner first(models::to_model(small_convnet(22)), {1, 8, 8}, options, KeptChannelsProbe{28});
  first.prune_to_fraction_of_target(1.0);
  torch::serialize::OutputArchive out;
  first.save(out);
  std::stringstream bytes;
  out.save_to(bytes);
  // The resumed run's probe would time the model slower and prune more; it must not be asked.
  auto calls = std::make_shared<int>(0);
  L1Pruner resumed(models::to_model(small_convnet(22)), {1, 8, 8}, options,
                   [calls](const std::vector<ChannelRemoval>& r) {
                     ++*calls;
                     return 2.0 * KeptChannelsProbe{28}(r);
                   });
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  resumed.load(in);
  resumed.prune_to_fraction_of_target(1.0);
  EXPECT_EQ(*calls, 0);
  EXPECT_EQ(resumed.cost_sparsity(), first.cost_sparsity());
  EXPECT_EQ(resumed.dense_latency_ms(), first.dense_latency_ms());
  EXPECT_EQ(resumed.target_latency_ms(), first.target_latency_ms());
  for (size_t g = 0; g < first.kept_channels().size(); ++g) {
    EXPECT_EQ(resumed.kept_channels()[g].kept.size(), first.kept_channels()[g].kept.size());
  }
}

TEST(ChannelPruning, ATrainerResumingALatencyTargetRestoresTheRatioBeforeAnySearch) {
  const auto dir = scratch_dir("latency_trainer_resume");
  const auto data = data::make_synthetic(data::SyntheticOptions().samples(64).classes(3).shape({1, 8, 8}).seed(3));
  const auto options = PruneOptions().structure(PruneStructure::kChannels).sparsity(0.8).latency_ms(14);
  const auto training =
      train::TrainerOptions().epochs(2).batch_size(16).progress(false).checkpoint_path((dir / "c.pt").string());
  auto first_model = small_convnet(23);
  auto first = std::make_shared<L1Pruner>(models::to_model(first_model), std::vector<int64_t>{1, 8, 8}, options,
                                          KeptChannelsProbe{28});
  train::Trainer run(first_model, training);
  run.add_modifier(first);
  run.fit(data);

  auto calls = std::make_shared<int>(0);
  auto second_model = small_convnet(23);
  auto second = std::make_shared<L1Pruner>(models::to_model(second_model), std::vector<int64_t>{1, 8, 8}, options,
                                           [calls](const std::vector<ChannelRemoval>& r) {
                                             ++*calls;
                                             return 2.0 * KeptChannelsProbe{28}(r);
                                           });
  train::Trainer resumed(second_model, train::TrainerOptions(training).resume(true));
  resumed.add_modifier(second);
  EXPECT_TRUE(resumed.fit(data).resumed);
  EXPECT_EQ(*calls, 0);
  EXPECT_EQ(second->cost_sparsity(), first->cost_sparsity());
}

TEST(ChannelPruning, ALatencyTheDenseModelAlreadyMeetsPrunesNoChannel) {
  const auto model = models::to_model(small_convnet(18));
  L1Pruner pruner(model, {1, 8, 8}, PruneOptions().structure(PruneStructure::kChannels).sparsity(0.8).latency_ms(30),
                  KeptChannelsProbe{28});
  pruner.prune_to_fraction_of_target(1.0);
  EXPECT_EQ(pruner.cost_sparsity(), 0);
  for (const auto& r : pruner.kept_channels()) EXPECT_EQ(static_cast<int64_t>(r.kept.size()), r.group.channels);
}

TEST(ChannelPruning, ALatencyTargetOutOfReachNamesWhatTheProbeMeasured) {
  try {
    L1Pruner pruner(models::to_model(small_convnet(19)), {1, 8, 8},
                    PruneOptions().structure(PruneStructure::kChannels).sparsity(0.5).latency_ms(5),
                    [](const std::vector<ChannelRemoval>&) { return 10.0; });
    pruner.choose_latency_ratio();
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(),
                         "prune: latency_ms 5 is out of reach with at most sparsity 0.5 of each layer's channels (that "
                         "measured 10.000 ms at batch 1, the dense model 10.000 ms)"))
        << e.what();
  }
}

TEST(ChannelPruning, ALatencyTargetWithoutAProbeIsRefused) {
  try {
    L1Pruner(models::to_model(small_convnet(20)), {1, 8, 8},
             PruneOptions().structure(PruneStructure::kChannels).latency_ms(5));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "a latency_ms target needs a LatencyProbe")) << e.what();
  }
}

TEST(ChannelPruning, TheTimedProbeTimesACopyWithTheChannelsRemovedAndLeavesTheModel) {
  auto m = small_convnet(21);
  const auto model = models::to_model(m);
  int copies = 0;
  std::vector<int64_t> widths;
  const auto probe = timed_latency_probe(
      [&] {
        ++copies;
        auto copy = small_convnet(21);
        return models::to_model(copy);
      },
      {2, 1, 8, 8}, 3);
  const auto graph = channel_graph(*m);
  ASSERT_FALSE(graph.groups.empty());
  ChannelRemoval r{graph.groups.front(), {0}};
  EXPECT_GT(probe({r}), 0.0);
  EXPECT_EQ(copies, 1);
  // The model itself kept its width.
  EXPECT_EQ(m->features->as<nn::Conv2dImpl>(0)->weight.size(0), 4);
}

TEST(ChannelPruningRecipe, ALatencyTargetIsTimedOnCopiesAndReported) {
  const auto dir = scratch_dir("channel_latency_recipe");
  // A target any model meets: the wiring, not the machine's speed, is under test.
  write_file(dir / "recipe.yaml",
             channel_recipe("      sparsity: 0.5\n      latency_ms: 1000000\n      latency_batch: 4\n"));
  const auto run =
      run_shrink("run --no-progress --out " + (dir / "run").string() + " " + (dir / "recipe.yaml").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto pruning = read_json(dir / "run" / "report.json")["stages"][1]["pruning"];
  EXPECT_EQ(pruning["latency_target_ms"], 1000000) << pruning.dump();
  EXPECT_EQ(pruning["latency_batch"], 4);
  EXPECT_EQ(pruning["latency_sparsity"], 0);
  EXPECT_GT(pruning["dense_latency_ms"].get<double>(), 0);
}

TEST(ChannelPruningRecipe, ALatencyTargetOnSingleWeightsIsARecipeErrorAtTheKey) {
  const auto dir = scratch_dir("weights_latency_recipe");
  auto text = channel_recipe("      sparsity: 0.5\n      latency_ms: 2\n");
  text.replace(text.find("structure: channels"), 19, "structure: weights");
  write_file(dir / "recipe.yaml", text);
  const auto r = run_shrink("validate " + (dir / "recipe.yaml").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "latency_ms")) << r.output;
}

TEST(ChannelPruningReport, TheStageSectionListsEachLayersChannelsBeforeAndAfterAndTheLayersLeftWhole) {
  auto m = models::to_model(small_convnet(16));
  L1Pruner pruner(m.module, PruneOptions().structure(PruneStructure::kChannels).sparsity(0.5));
  pruner.prune_to_fraction_of_target(1.0);
  pruner.finish(m);
  const auto summary = pruner.summary();
  train::StageView stage;
  stage.index = 1;
  stage.kind = "prune";
  stage.model = "small";
  const auto md = summary->markdown(stage);
  EXPECT_TRUE(contains(md, "## Channels pruned in stage 1 prune small")) << md;
  EXPECT_TRUE(contains(md, "| features.0 | 4 | 2 | 50.0% |")) << md;
  EXPECT_TRUE(contains(md, "| features.4 | 8 | 4 | 50.0% |")) << md;
  const auto html = summary->html(stage);
  EXPECT_TRUE(contains(html, "<tr><td>features.4</td><td>8</td><td>4</td><td>50.0%</td></tr>")) << html;
}

TEST(ChannelPruningRecipe, AStageDistillsThePrunedModelFromItsOwnUnprunedSelf) {
  const auto dir = scratch_dir("channel_kd");
  auto text = synthetic_recipe(
      2,
      "  - train:\n      model: small\n      epochs: 2\n      batch_size: 32\n      optimizer: {name: sgd, lr: 0.02}\n"
      "      modifiers:\n        - prune: {structure: channels, sparsity: 0.5}\n"
      "        - distill: {teacher: small, temperature: 4, alpha: 0.9}\n");
  text.replace(text.find("    arch: mlp\n    hidden: [32, 16]\n"), 35,
               "    arch: convnet\n    channels: [8, 16]\n    fc: [32]\n");
  write_file(dir / "recipe.yaml", text);
  const auto run =
      run_shrink("run --no-progress --out " + (dir / "run").string() + " " + (dir / "recipe.yaml").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto report = read_json(dir / "run" / "report.json");
  const auto& stage = report["stages"][1];
  EXPECT_EQ(stage["modifiers"][0]["layers"][1]["kept_channels"], 8) << stage["modifiers"].dump();
  EXPECT_EQ(stage["modifiers"][1]["teacher"], "small") << stage["modifiers"].dump();
  EXPECT_GT(stage["modifiers"][1]["teacher_passes"].get<int64_t>(), 0) << stage["modifiers"].dump();
  // The student left the run smaller; the file holds it alone, no teacher.
  const auto eval = run_shrink("eval " + (dir / "run" / stage["artifacts"]["pt"].get<std::string>()).string());
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_TRUE(contains(eval.output, core::format_double("accuracy %.4f", stage["metrics"]["accuracy"].get<double>())))
      << eval.output;
}

TEST(ModifierContext, AStagesOwnModelAsTeacherIsACopyThatTrainingTheStudentLeavesAlone) {
  std::map<std::string, recipe::ModelSlot> slots;
  models::Blueprint b;
  b.arch = "convnet";
  b.options = YAML::Load("{channels: [4, 8], fc: [16]}");
  b.input = {{1, 8, 8}, 3};
  torch::manual_seed(17);
  slots["small"] = {"small", b, models::build(b)};
  data::Splits splits;
  recipe::StageContext ctx;
  ctx.models = &slots;
  ctx.data = &splits;
  auto& slot = slots.at("small");
  const auto teacher = recipe::modifier_context(slot, ctx).model_named("small");
  ASSERT_NE(teacher.module.get(), slot.model.module.get());
  const auto x = torch::randn({2, 1, 8, 8});
  slot.model.module->eval();
  teacher.module->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(teacher.forward(x), slot.model.forward(x)));
  for (auto& p : slot.model.module->parameters()) p.add_(1.0);
  EXPECT_FALSE(torch::equal(teacher.forward(x), slot.model.forward(x)));
}
