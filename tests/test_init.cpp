// Bring your own model: a recipe's model starts from a file (`models.NAME.init`) — PyTorch's
// plain state_dict, shrink's own file, a run folder — and what shrink hands back loads in PyTorch.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "helpers.h"
#include "io/safetensors_format.h"
#include "io/state_dict.h"
#include "models/registry.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace shrink;
using namespace shrink::testing;

namespace {

// A recipe over the IDX files in its own folder (those byom.py writes, or none for validation
// only) for `arch: mlp, hidden: [32, 16]` on 1x8x8 samples of 4 classes.
std::string recipe_for(const std::string& model_keys, const std::string& stages) {
  return "name: byom\n"
         "seed: 7\n"
         "device: cpu\n"
         "threads: 1\n"
         "data:\n"
         "  format: idx\n"
         "  train: {images: train-images.idx, labels: train-labels.idx}\n"
         "  test: {images: test-images.idx, labels: test-labels.idx}\n"
         "  classes: [a, b, c, d]\n"
         "  val_split: 0.1\n"
         "models:\n"
         "  small:\n"
         "    arch: mlp\n"
         "    hidden: [32, 16]\n" +
         model_keys + "stages:\n" + stages +
         "report:\n"
         "  latency_batch_sizes: [1]\n"
         "  warmup: 1\n"
         "  iterations: 3\n";
}

const std::string kPrune80 =
    "  - prune:\n"
    "      model: small\n"
    "      method: l1\n"
    "      scope: global\n"
    "      sparsity: 0.8\n"
    "      schedule: {kind: agp, start_epoch: 0, end_epoch: 2}\n"
    "      finetune: {epochs: 4, batch_size: 32, optimizer: {name: sgd, lr: 0.02, momentum: 0.9}}\n";

const std::string kTrain1 =
    "  - train:\n"
    "      model: small\n"
    "      epochs: 1\n"
    "      batch_size: 32\n"
    "      optimizer: {name: sgd, lr: 0.01}\n";

// The synthetic recipe with `init_keys` under its model and `stages` in place of its training.
std::string synthetic_with_init(const std::string& init_keys, const std::string& stages) {
  auto text = synthetic_recipe(1);
  text = text.substr(0, text.find("stages:\n"));
  text.replace(text.find("    hidden: [32, 16]\n"), 21, "    hidden: [32, 16]\n" + init_keys);
  return text + "stages:\n" + stages + "report:\n  latency_batch_sizes: [1]\n  warmup: 1\n  iterations: 3\n";
}

// Small IDX data and a model trained on it in PyTorch (tests/python/byom.py), saved as
// torch.save(model.state_dict()) with every name under `prefix`. Returns PyTorch's test accuracy.
double make_pytorch_model(const fs::path& dir, const std::string& prefix = "") {
  const auto r = run_command("/usr/bin/python3 " + tests_dir() + "/python/byom.py make " + dir.string() + " '" +
                             prefix + "' 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return last_json_line(r.output).at("test_accuracy").get<double>();
}

// A plain state_dict of the synthetic recipe's model as PyTorch writes one: names and tensors only.
fs::path save_plain_state_dict(const fs::path& dir, const std::vector<int64_t>& hidden,
                               const std::string& prefix = "") {
  torch::manual_seed(4);
  const auto m = models::build_model(models::MlpOptions().hidden(hidden), {{1, 8, 8}, 4});
  auto sd = io::state_dict(*m);
  for (auto& e : sd) e.name = prefix + e.name;
  const auto file = dir / "m.pth";
  io::save_state_dict(file, sd);
  return file;
}

// Runs `text` as recipe.yaml of a fresh folder `name` into its `first/`; returns the folder.
fs::path first_run(const std::string& name, const std::string& text) {
  const auto recipe = write_recipe(name, text);
  const auto run =
      run_shrink("run --no-progress --out " + (recipe.parent_path() / "first").string() + " " + recipe.string());
  EXPECT_EQ(run.exit_code, 0) << run.output;
  return recipe.parent_path();
}

}  // namespace

TEST(BringYourOwnModel, APyTorchStateDictPrunedTo80PercentLoadsBackInPyTorchWithTheReportedAccuracy) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("byom_prune80");
  make_pytorch_model(dir);
  const auto recipe = dir / "recipe.yaml";
  write_file(recipe, recipe_for("    init: m.pth\n", kPrune80));
  const auto run = run_shrink("run --no-progress --out " + (dir / "run").string() + " " + recipe.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto stage = read_json(dir / "run" / "report.json").at("stages").at(0);
  const auto back = run_command("/usr/bin/python3 " + tests_dir() + "/python/byom.py eval " + dir.string() + " " +
                                (dir / "run" / stage["artifacts"]["pth"].get<std::string>()).string() + " 2>&1");
  ASSERT_EQ(back.exit_code, 0) << back.output;
  const auto in_python = last_json_line(back.output);
  EXPECT_NEAR(in_python["accuracy"].get<double>(), stage["metrics"]["accuracy"].get<double>(), 0.001);
  EXPECT_EQ(in_python["masks"].get<int>(), 3);
  EXPECT_NEAR(in_python["weight_sparsity"].get<double>(), 0.8, 0.002);
}

TEST(BringYourOwnModel, TheReportBeginsWithTheModelAsBroughtAtTheAccuracyPyTorchMeasured) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("byom_initial");
  const double pytorch_accuracy = make_pytorch_model(dir);
  const auto recipe = dir / "recipe.yaml";
  write_file(recipe, recipe_for("    init: m.pth\n", kTrain1));
  const auto run = run_shrink("run --no-progress --out " + (dir / "run").string() + " " + recipe.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto report = read_json(dir / "run" / "report.json");
  ASSERT_EQ(report["initial"].size(), 1u) << report.dump(1);
  const auto& initial = report["initial"][0];
  EXPECT_EQ(initial["kind"], "initial");
  EXPECT_EQ(initial["model"], "small");
  EXPECT_NEAR(initial["metrics"]["accuracy"].get<double>(), pytorch_accuracy, 1e-6);
  EXPECT_EQ(initial["metrics"]["size_bytes"].get<int64_t>(), static_cast<int64_t>(fs::file_size(dir / "m.pth")));
  EXPECT_FALSE(initial["metrics"]["latency"].empty());
  const auto md = read_file(dir / "run" / "report.md");
  EXPECT_TRUE(contains(md, "| — | initial | small |")) << md;
  EXPECT_TRUE(contains(md, "## Against the models as brought")) << md;
}

TEST(BringYourOwnModel, AnInitOfAnotherShapeIsARecipeErrorAtTheKeyListingTheMisshapedTensors) {
  const auto recipe = write_recipe("byom_shape", synthetic_with_init("    init: m.pth\n", kTrain1));
  save_plain_state_dict(recipe.parent_path(), {16, 16});
  const auto r = run_shrink("validate " + recipe.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, recipe.string() + ":13:11")) << r.output;
  EXPECT_TRUE(contains(r.output, "models.small.init")) << r.output;
  EXPECT_TRUE(contains(r.output, "'classifier.0.weight' has shape [16, 64], the model expects [32, 64]")) << r.output;
  EXPECT_TRUE(contains(r.output, "'classifier.2.weight' has shape [16, 16], the model expects [16, 32]")) << r.output;
}

TEST(BringYourOwnModel, InitPrefixStripsAWrappersNamesAndItsAbsenceSuggestsIt) {
  const auto without = write_recipe("byom_prefix_missing", synthetic_with_init("    init: m.pth\n", kTrain1));
  save_plain_state_dict(without.parent_path(), {32, 16}, "module.");
  const auto refused = run_shrink("validate " + without.string());
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_TRUE(contains(refused.output, "unexpected tensor 'module.classifier.0.weight'")) << refused.output;
  EXPECT_TRUE(contains(refused.output, "every name starts with 'module.': init_prefix: module.")) << refused.output;

  const auto with =
      write_recipe("byom_prefix", synthetic_with_init("    init: m.pth\n    init_prefix: module.\n", kTrain1));
  save_plain_state_dict(with.parent_path(), {32, 16}, "module.");
  const auto accepted = run_shrink("validate " + with.string());
  EXPECT_EQ(accepted.exit_code, 0) << accepted.output;
}

TEST(BringYourOwnModel, ASafetensorsFileStartsAModelAsTheSameWeightsInAPthDo) {
  // The same weights as .pth and as .safetensors (Hugging Face's format), each a recipe's init.
  double initial[2] = {};
  for (int k = 0; k < 2; ++k) {
    const std::string file = k == 0 ? "m.pth" : "m.safetensors";
    const auto recipe =
        write_recipe("byom_safetensors_" + std::to_string(k), synthetic_with_init("    init: " + file + "\n", kTrain1));
    const auto pth = save_plain_state_dict(recipe.parent_path(), {32, 16});
    if (k == 1) io::write_safetensors(recipe.parent_path() / file, io::load_state_dict_file(pth));
    const auto out = recipe.parent_path() / "run";
    const auto r = run_shrink("run --no-progress --out " + out.string() + " " + recipe.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "starts from " + (recipe.parent_path() / file).string())) << r.output;
    initial[k] = read_json(out / "report.json")["initial"][0]["metrics"]["accuracy"].get<double>();
  }
  EXPECT_EQ(initial[0], initial[1]);
}

TEST(BringYourOwnModel, AMissingInitFileIsARecipeErrorNamingIt) {
  const auto recipe = write_recipe("byom_missing", synthetic_with_init("    init: nowhere.pth\n", kTrain1));
  const auto r = run_shrink("validate " + recipe.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "models.small.init")) << r.output;
  EXPECT_TRUE(contains(r.output, "nowhere.pth: no such file or run folder")) << r.output;
}

TEST(BringYourOwnModel, ARunFolderInitStartsFromThatRunsLastStageOfTheModel) {
  const auto dir = first_run("byom_run_first", synthetic_recipe(2));
  const auto second = dir / "second.yaml";
  write_file(second, synthetic_with_init("    init: first\n", kTrain1));
  const auto run = run_shrink("run --no-progress --out " + (dir / "second").string() + " " + second.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto before = read_json(dir / "first" / "report.json")["stages"][0]["metrics"];
  const auto initial = read_json(dir / "second" / "report.json")["initial"].at(0)["metrics"];
  EXPECT_EQ(initial["accuracy"], before["accuracy"]);
  EXPECT_EQ(initial["confusion"], before["confusion"]);
}

TEST(BringYourOwnModel, InitStageNamesAStageTheRunDidNotSaveAsARecipeError) {
  const auto dir = first_run("byom_stage", synthetic_recipe(1));
  const auto second = dir / "second.yaml";
  write_file(second, synthetic_with_init("    init: first\n    init_stage: 3\n", kTrain1));
  const auto r = run_shrink("validate " + second.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "the run saved no model 'small' in stage 3")) << r.output;
}

TEST(BringYourOwnModel, APrunedInitKeepsItsMasksThroughTraining) {
  const auto dir = first_run("byom_pruned", synthetic_recipe(2,
                                                             "  - prune:\n"
                                                             "      model: small\n"
                                                             "      method: l1\n"
                                                             "      sparsity: 0.6\n"));
  const auto second = dir / "second.yaml";
  write_file(second, synthetic_with_init("    init: first\n", kTrain1));
  const auto run = run_shrink("run --no-progress --out " + (dir / "second").string() + " " + second.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto report = read_json(dir / "second" / "report.json");
  const double pruned = read_json(dir / "first" / "report.json")["stages"][1]["metrics"]["sparsity"].get<double>();
  EXPECT_GT(pruned, 0.5);
  EXPECT_EQ(report["initial"][0]["metrics"]["sparsity"].get<double>(), pruned);
  EXPECT_EQ(report["stages"][0]["metrics"]["sparsity"].get<double>(), pruned);
}

TEST(BringYourOwnModel, AnInt8InitCannotBeTrained) {
  const auto dir = first_run("byom_int8", synthetic_recipe(1,
                                                           "  - quantize:\n"
                                                           "      model: small\n"
                                                           "      method: ptq_dynamic\n"));
  const auto second = dir / "second.yaml";
  write_file(second, synthetic_with_init("    init: first\n", kTrain1));
  const auto r = run_shrink("validate " + second.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "stages.0.train")) << r.output;
  EXPECT_TRUE(contains(r.output, "model 'small' starts from an int8 file")) << r.output;
}

TEST(BringYourOwnModel, ShrinksOwnFileOfAnotherArchitectureIsRefusedNamingBoth) {
  const auto dir = first_run("byom_arch", synthetic_recipe(1));
  const auto second = dir / "second.yaml";
  auto text = synthetic_with_init("    init: first\n", kTrain1);
  text.replace(text.find("hidden: [32, 16]"), 16, "hidden: [32, 8]");
  write_file(second, text);
  const auto r = run_shrink("validate " + second.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "holds another model than declared: options {")) << r.output;
  EXPECT_TRUE(contains(r.output, "\"hidden\":[32,16]} (declared: {")) << r.output;
  EXPECT_TRUE(contains(r.output, "\"hidden\":[32,8]})")) << r.output;
}

TEST(BringYourOwnModel, AnInt8InitTeachesAStudent) {
  const auto dir = first_run("byom_int8_teacher", synthetic_recipe(2,
                                                                   "  - quantize:\n"
                                                                   "      model: small\n"
                                                                   "      method: ptq_static\n"));
  auto text = synthetic_with_init("    init: first\n",
                                  "  - distill:\n"
                                  "      model: student\n"
                                  "      teacher: small\n"
                                  "      epochs: 1\n"
                                  "      batch_size: 32\n"
                                  "      optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n");
  text.replace(text.find("stages:\n"), 8, "  student:\n    arch: mlp\n    hidden: [8]\nstages:\n");
  const auto second = dir / "second.yaml";
  write_file(second, text);
  const auto run = run_shrink("run --no-progress --out " + (dir / "second").string() + " " + second.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto report = read_json(dir / "second" / "report.json");
  EXPECT_EQ(report["initial"][0]["metrics"]["accuracy"],
            read_json(dir / "first" / "report.json")["stages"][1]["metrics"]["accuracy"]);
  EXPECT_EQ(report["stages"][0]["model"], "student");
}

TEST(BringYourOwnModel, TheShippedRecipeTakesAPlainLeNet300StateDict) {
  const auto dir = scratch_dir("byom_shipped");
  torch::manual_seed(5);
  const auto m = models::build_model(models::MlpOptions().hidden({300, 100}), {{1, 28, 28}, 10});
  io::save_state_dict(dir / "lenet300.pth", io::state_dict(*m));
  const auto r = run_shrink(
      "validate " + tests_dir() +
      "/../recipes/fmnist/lenet300_from_pytorch.yaml --set models.lenet300.init=" + (dir / "lenet300.pth").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}
