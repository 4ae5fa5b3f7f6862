// Recipe loading: each kind of error is located (file:line:column: key), --set overrides, defaults.
#include <gtest/gtest.h>

#include "core/device.h"
#include "core/error.h"
#include "helpers.h"
#include "recipe/recipe.h"

namespace fs = std::filesystem;
using shrink::core::Diagnostic;
using shrink::core::RecipeError;
using shrink::core::UsageError;
using shrink::recipe::load_recipe;
using namespace shrink::testing;

namespace {

std::vector<Diagnostic> diagnostics_of(const fs::path& path, const std::vector<std::string>& sets = {}) {
  try {
    load_recipe(path, sets);
  } catch (const RecipeError& e) {
    return e.diagnostics();
  }
  ADD_FAILURE() << "expected a RecipeError";
  return {};
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return text.replace(pos, from.size(), to);
}

}  // namespace

TEST(Recipe, ValidSyntheticRecipeLoads) {
  const auto r = load_recipe(write_recipe("recipe_valid", synthetic_recipe()));
  EXPECT_EQ(r.name, "synthetic-test");
  EXPECT_EQ(r.seed, 7u);
  ASSERT_EQ(r.stages.size(), 1u);
  EXPECT_EQ(r.stage_kinds[0], "train");
  EXPECT_EQ(r.stages[0]->model(), "small");
  EXPECT_EQ(r.data.format, shrink::data::DataFormat::kSynthetic);
}

TEST(Recipe, UnknownKeyIsLocatedAndSuggestsTheClosestKey) {
  const auto path = write_recipe("recipe_unknown", replace(synthetic_recipe(), "      epochs: 2", "      epocs: 2"));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].file, path.string());
  EXPECT_EQ(d[0].line, 16);
  EXPECT_EQ(d[0].column, 7);
  EXPECT_EQ(d[0].key, "stages.0.train.epocs");
  EXPECT_NE(d[0].message.find("unknown key"), std::string::npos);
  EXPECT_NE(d[0].message.find("did you mean 'epochs'"), std::string::npos);
}

TEST(Recipe, WrongTypeIsLocatedWithTheExpectation) {
  const auto path = write_recipe("recipe_type", replace(synthetic_recipe(), "batch_size: 32", "batch_size: lots"));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].line, 17);
  EXPECT_EQ(d[0].column, 19);
  EXPECT_EQ(d[0].key, "stages.0.train.batch_size");
  EXPECT_EQ(d[0].message, "expected an integer >= 1, got 'lots'");
}

TEST(Recipe, Fp16OnACpuRecipeIsLocatedAndSuggestsBf16) {
  const auto path = write_recipe(
      "recipe_fp16_cpu", replace(synthetic_recipe(), "batch_size: 32", "batch_size: 32\n      precision: fp16"));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].line, 18);
  EXPECT_EQ(d[0].column, 18);
  EXPECT_EQ(d[0].key, "stages.0.train.precision");
  EXPECT_EQ(d[0].message, "precision fp16 needs a CUDA device and this recipe's device is cpu; use bf16 on the CPU");
}

TEST(Recipe, AnUnknownPrecisionListsTheChoices) {
  const auto path = write_recipe("recipe_precision",
                                 replace(synthetic_recipe(), "batch_size: 32", "batch_size: 32\n      precision: fp8"));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.0.train.precision");
  EXPECT_NE(d[0].message.find("fp8"), std::string::npos) << d[0].message;
}

TEST(Recipe, OutOfRangeValueIsReported) {
  const auto path = write_recipe("recipe_range", replace(synthetic_recipe(), "lr: 0.05", "lr: -1"));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.0.train.optimizer.lr");
  EXPECT_EQ(d[0].message, "expected a number > 0, got -1");
}

TEST(Recipe, MissingRequiredKeyPointsAtItsParent) {
  const auto path = write_recipe("recipe_missing", replace(synthetic_recipe(), "      model: small\n", ""));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.0.train.model");
  EXPECT_EQ(d[0].message, "required key is missing");
  EXPECT_EQ(d[0].line, 15);
}

TEST(Recipe, ReferenceToAnUndefinedModelIsReported) {
  const auto path = write_recipe("recipe_ref", replace(synthetic_recipe(), "model: small", "model: smal"));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.0.train.model");
  EXPECT_EQ(d[0].line, 15);
  EXPECT_NE(d[0].message.find("'smal' is not defined under 'models' (defined: small)"), std::string::npos);
  EXPECT_NE(d[0].message.find("did you mean 'small'"), std::string::npos);
}

TEST(Recipe, UnknownStageKindListsTheKnownOnes) {
  const auto path = write_recipe("recipe_kind", replace(synthetic_recipe(), "  - train:", "  - trian:"));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.0.trian");
  EXPECT_NE(d[0].message.find(
                "unknown kind 'trian' (expected one of distill, prune, quantize, train); did you mean 'train'?"),
            std::string::npos);
}

TEST(Recipe, EveryProblemIsListedAtOnce) {
  std::string text = replace(synthetic_recipe(), "epochs: 2", "epochs: -2");
  text = replace(text, "seed: 7", "seed: seven");
  text = replace(text, "    arch: mlp\n", "    arch: mlp\n    layers: 3\n");
  const auto d = diagnostics_of(write_recipe("recipe_many", text));
  ASSERT_EQ(d.size(), 3u);
  std::set<std::string> keys;
  for (const auto& x : d) keys.insert(x.key);
  EXPECT_EQ(keys, (std::set<std::string>{"seed", "models.small.layers", "stages.0.train.epochs"}));
}

TEST(Recipe, YamlSyntaxErrorIsLocated) {
  const auto path = write_recipe("recipe_syntax", "name: x\nstages: [unclosed\n");
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].file, path.string());
  EXPECT_GT(d[0].line, 0);
  EXPECT_NE(d[0].message.find("invalid YAML"), std::string::npos);
}

TEST(Recipe, CudaWithoutCudaSupportIsARecipeError) {
  if (shrink::core::cuda_available()) GTEST_SKIP() << "this LibTorch has CUDA";
  const auto path = write_recipe("recipe_cuda", replace(synthetic_recipe(), "device: cpu", "device: cuda"));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "device");
  EXPECT_EQ(d[0].line, 3);
  EXPECT_NE(d[0].message.find("no CUDA support"), std::string::npos);
}

TEST(Recipe, UnknownDatasetNameIsReported) {
  const auto path = write_recipe("recipe_dataset",
                                 "name: x\ndata: {dataset: fashion-mnst}\nmodels: {m: {arch: mlp}}\n"
                                 "stages: [{train: {model: m}}]\n");
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "data");
  EXPECT_NE(d[0].message.find("unknown dataset 'fashion-mnst'"), std::string::npos);
  EXPECT_NE(d[0].message.find("did you mean 'fashion-mnist'"), std::string::npos);
}

TEST(Recipe, SetOverridesAValueInAListItem) {
  const auto r = load_recipe(write_recipe("recipe_set", synthetic_recipe()), {"stages.0.train.epochs=5", "seed=11"});
  EXPECT_EQ(r.seed, 11u);
  EXPECT_EQ(r.effective["stages"][0]["train"]["epochs"].as<int>(), 5);
}

TEST(Recipe, SetAcceptsYamlListsAndAddsAbsentKeys) {
  const auto r = load_recipe(write_recipe("recipe_set_list", synthetic_recipe()),
                             {"models.small.hidden=[8, 4]", "stages.0.train.label_smoothing=0.2"});
  EXPECT_EQ(r.effective["models"]["small"]["hidden"].as<std::vector<int>>(), (std::vector<int>{8, 4}));
  EXPECT_DOUBLE_EQ(r.effective["stages"][0]["train"]["label_smoothing"].as<double>(), 0.2);
}

TEST(Recipe, InvalidSetValueIsAttributedToTheCommandLine) {
  const auto d = diagnostics_of(write_recipe("recipe_set_bad", synthetic_recipe()), {"stages.0.train.epochs=many"});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].file, "--set");
  EXPECT_EQ(d[0].key, "stages.0.train.epochs");
  EXPECT_EQ(d[0].format(), "--set: stages.0.train.epochs: expected an integer >= 0, got 'many'");
}

TEST(Recipe, SetWithAnOutOfRangeIndexIsAUsageError) {
  try {
    load_recipe(write_recipe("recipe_set_index", synthetic_recipe()), {"stages.3.train.epochs=1"});
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("index 3 is out of range ('stages' has 1 item)"), std::string::npos)
        << e.what();
  }
}

TEST(Recipe, SetWithoutEqualsIsAUsageError) {
  EXPECT_THROW(load_recipe(write_recipe("recipe_set_noeq", synthetic_recipe()), {"seed"}), UsageError);
}

TEST(Recipe, EffectiveRecipeHasDefaultsFilled) {
  const auto r = load_recipe(write_recipe("recipe_defaults", synthetic_recipe()));
  const auto train = r.effective["stages"][0]["train"];
  EXPECT_EQ(train["schedule"]["name"].as<std::string>(), "constant");
  EXPECT_DOUBLE_EQ(train["optimizer"]["weight_decay"].as<double>(), 0.0);
  EXPECT_FALSE(train["optimizer"]["nesterov"].as<bool>());
  EXPECT_EQ(r.effective["export"]["formats"].size(), 3u);
  EXPECT_NE(r.effective_yaml().find("label_smoothing: 0"), std::string::npos);
}

TEST(Recipe, OptimizerOptionsDependOnTheChosenOptimizer) {
  const auto d = diagnostics_of(write_recipe(
      "recipe_adam_momentum",
      replace(synthetic_recipe(), "{name: sgd, lr: 0.05, momentum: 0.9}", "{name: adam, lr: 0.001, momentum: 0.9}")));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.0.train.optimizer.momentum");
}

TEST(Recipe, EffectiveDigestChangesWithOverrides) {
  const auto path = write_recipe("recipe_digest", synthetic_recipe());
  EXPECT_EQ(load_recipe(path).effective_sha256(), load_recipe(path).effective_sha256());
  EXPECT_NE(load_recipe(path).effective_sha256(), load_recipe(path, {"seed=8"}).effective_sha256());
}

TEST(Recipe, MissingFileIsAUsageError) { EXPECT_THROW(load_recipe("/nonexistent/recipe.yaml"), UsageError); }

namespace {

std::string prune_stage(const std::string& body) {
  return "  - prune:\n      model: small\n      sparsity: 0.5\n" + body;
}

}  // namespace

TEST(Recipe, PruneSelectorMatchingNothingFailsValidationWithTheParameterNames) {
  const auto path =
      write_recipe("recipe_prune_selector", synthetic_recipe(1, prune_stage("      include: ['fc1\\.weight']\n")));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.1.prune");
  EXPECT_EQ(d[0].line, 20);
  EXPECT_NE(d[0].message.find("include 'fc1\\.weight' matches no parameter"), std::string::npos) << d[0].message;
  EXPECT_NE(d[0].message.find("classifier.0.weight [32, 64]"), std::string::npos) << d[0].message;
}

TEST(Recipe, PruneScheduleEndingAfterTheFineTuningIsRejected) {
  const auto path =
      write_recipe("recipe_prune_end", synthetic_recipe(1, prune_stage("      schedule: {kind: agp, end_epoch: 5}\n"
                                                                       "      finetune: {epochs: 2}\n")));
  const auto d = diagnostics_of(path);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].message.find("schedule.end_epoch (5) is past the fine-tuning run (finetune.epochs: 2)"),
            std::string::npos)
      << d[0].message;
}

TEST(Recipe, PruneScheduleKeysDependOnTheKind) {
  const auto d = diagnostics_of(write_recipe(
      "recipe_prune_kind", synthetic_recipe(1, prune_stage("      schedule: {kind: oneshot, rounds: 3}\n"))));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.1.prune.schedule.rounds");
}

namespace {

std::string train_with_modifiers(const std::string& modifiers) {
  return "  - train:\n      model: small\n      epochs: 3\n      modifiers:\n" + modifiers;
}

}  // namespace

TEST(Recipe, ATrainStageTakesModifiersInListOrder) {
  const auto path = write_recipe(
      "modifiers_ok",
      synthetic_recipe(1, train_with_modifiers("        - prune: {sparsity: 0.5, include: ['classifier\\.0']}\n"
                                               "        - prune: {sparsity: 0.3, include: ['classifier\\.2']}\n")));
  const auto r = load_recipe(path);
  EXPECT_EQ(r.effective["stages"][1]["train"]["modifiers"].size(), 2u);
  EXPECT_EQ(r.effective["stages"][1]["train"]["modifiers"][1]["prune"]["schedule"]["kind"].as<std::string>(),
            "oneshot");
}

TEST(Recipe, TwoModifiersActingOnOneTensorAreRejected) {
  const auto d = diagnostics_of(write_recipe(
      "modifiers_overlap",
      synthetic_recipe(1, train_with_modifiers("        - prune: {sparsity: 0.5}\n"
                                               "        - prune: {sparsity: 0.3, include: ['classifier\\.2']}\n"))));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.1.train");
  EXPECT_NE(d[0].message.find("modifiers.0 and modifiers.1 both act on 'classifier.2.weight'"), std::string::npos)
      << d[0].message;
}

TEST(Recipe, AModifierWindowPastTheTrainingRunIsRejected) {
  const auto d = diagnostics_of(write_recipe(
      "modifiers_window",
      synthetic_recipe(
          1, train_with_modifiers("        - prune: {sparsity: 0.5, schedule: {kind: agp, end_epoch: 4}}\n"))));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].message.find("modifiers.0: schedule.end_epoch (4) is past the training run (epochs: 3)"),
            std::string::npos)
      << d[0].message;
}

TEST(Recipe, AnUnknownModifierKindListsTheKnownOnes) {
  const auto d = diagnostics_of(write_recipe(
      "recipe_modifiers_unknown", synthetic_recipe(1, train_with_modifiers("        - prun: {sparsity: 0.5}\n"))));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "stages.1.train.modifiers.0.prun");
  EXPECT_NE(d[0].message.find("unknown kind 'prun' (expected one of distill, prune, qat); did you mean 'prune'?"),
            std::string::npos)
      << d[0].message;
}

TEST(Recipe, ADataMapWithoutItsSyntheticSettingsUsesTheDefaults) {
  std::string text = synthetic_recipe(1);
  text =
      replace(text, "  synthetic: {samples: 512, test_samples: 256, classes: 4, shape: [1, 8, 8], noise: 1.0}\n", "");
  const auto r = load_recipe(write_recipe("recipe_synthetic_defaults", text));
  EXPECT_EQ(r.data.synthetic.samples(), shrink::data::SyntheticOptions().samples());
  EXPECT_EQ(r.data.synthetic.test_samples(), shrink::data::SyntheticOptions().test_samples());
}

TEST(Recipe, ARepeatedKeyIsARecipeErrorAtItsSecondPlace) {
  const auto path = write_recipe(
      "recipe_duplicate", replace(synthetic_recipe(), "      epochs: 2\n", "      epochs: 2\n      epochs: 3\n"));
  try {
    load_recipe(path);
    FAIL() << "a repeated key was accepted";
  } catch (const RecipeError& e) {
    ASSERT_EQ(e.diagnostics().size(), 1u);
    EXPECT_EQ(e.diagnostics()[0].key, "stages.0.train.epochs");
    EXPECT_TRUE(contains(e.what(), "the key 'epochs' repeats (first on line 16)")) << e.what();
    EXPECT_EQ(e.diagnostics()[0].line, 17);
  }
}

TEST(Recipe, ARecipePastTheNodeLimitIsRefusedWhereTheCountPassesIt) {
  std::string text = synthetic_recipe();
  text += "extra: [";
  for (int i = 0; i < 100001; ++i) text += i ? ",1" : "1";
  text += "]\n";
  const auto d = diagnostics_of(write_recipe("recipe_too_many_nodes", text));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(contains(d[0].message, "more than 100000 YAML nodes")) << d[0].message;
  EXPECT_GT(d[0].line, 1);
}

TEST(Recipe, ARecipeOverFourMebibytesIsRefusedBeforeItIsParsed) {
  // A 4 MiB comment: valid YAML that would take yaml-cpp seconds and tens of megabytes.
  std::string text = synthetic_recipe() + "# " + std::string(4 << 20, 'x') + "\n";
  const auto path = write_recipe("recipe_too_many_bytes", text);
  try {
    load_recipe(path);
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_TRUE(contains(e.what(), path.string() + ": the recipe is " + std::to_string(text.size()) +
                                       " bytes, over the limit of 4194304 bytes (4 MiB) for a recipe"))
        << e.what();
  }
}

TEST(Recipe, AnAliasCountsAsTheNodesItRepeats) {
  // Nine levels of ten aliases each: 10^9 nodes once expanded, from a few hundred bytes.
  std::string text = synthetic_recipe() + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    const std::string prev = "*a" + std::to_string(i - 1);
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) text += (j ? ", " : "") + prev;
    text += "]\n";
  }
  const auto d = diagnostics_of(write_recipe("recipe_billion_laughs", text));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(contains(d[0].message, "an alias counts as the nodes it repeats")) << d[0].message;
}

TEST(Recipe, MoreModelsThanTheLimitAreRefusedAtTheModelsKey) {
  std::string models = "models:\n";
  for (int i = 0; i < 1000; ++i) models += "  m" + std::to_string(i) + ": {arch: mlp, hidden: [4]}\n";
  const auto text = replace(synthetic_recipe(), "models:\n", models);
  const auto d = diagnostics_of(write_recipe("recipe_too_many_models", text));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "models");  // the 1000 above and the recipe's own
  EXPECT_EQ(d[0].message, "1001 entries; a recipe may have at most 1000");
}

TEST(Recipe, AnUndefinedModelsMessageListsSomeNamesNotAll) {
  std::string models = "models:\n";
  for (int i = 0; i < 500; ++i) models += "  m" + std::to_string(i) + ": {arch: mlp, hidden: [4]}\n";
  auto text = replace(synthetic_recipe(), "models:\n  small:", models + "  small:");
  text = replace(text, "model: small", "model: nothere");
  const auto d = diagnostics_of(write_recipe("recipe_many_names", text));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(contains(d[0].message, "... (501 in all)")) << d[0].message;
  EXPECT_LT(d[0].message.size(), 400u);
}

TEST(Recipe, AMegabyteValueIsCutInTheMessage) {
  const auto text = replace(synthetic_recipe(), "epochs: 2", "epochs: " + std::string(1 << 20, 'x'));
  const auto d = diagnostics_of(write_recipe("recipe_long_value", text));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(contains(d[0].format(), "... (1048576 characters)")) << d[0].format().substr(0, 300);
  EXPECT_LT(d[0].format().size(), 600u);
}
