// The shrink executable end to end: exit codes, messages, outputs, --set and --resume.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <map>
#include <sstream>

#include "data/idx_reader.h"
#include "helpers.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace shrink::testing;

namespace {

// Runs `recipe` twice — into dir/full, and into dir/cut made to look killed during stage 1 (only
// stage 0 recorded as completed, stage 1's outputs gone) — then resumes dir/cut.
CommandResult run_full_and_resumed(const fs::path& recipe, const fs::path& dir, const std::string& stage1_dir) {
  EXPECT_EQ(run_shrink("run --no-progress --out " + (dir / "full").string() + " " + recipe.string()).exit_code, 0);
  EXPECT_EQ(run_shrink("run --no-progress --out " + (dir / "cut").string() + " " + recipe.string()).exit_code, 0);
  auto state = read_json(dir / "cut" / "run_state.json");
  state["completed_stages"] = 1;
  write_file(dir / "cut" / "run_state.json", state.dump());
  fs::remove_all(dir / "cut" / stage1_dir);
  return run_shrink("run --no-progress --resume --out " + (dir / "cut").string() + " " + recipe.string());
}

}  // namespace

TEST(Cli, VersionPrintsTheVersion) {
  const auto r = run_shrink("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("shrink 0.1.0"), std::string::npos);
}

TEST(Cli, UnknownCommandExitsWithUsageError) {
  const auto r = run_shrink("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown command 'frobnicate'"), std::string::npos);
}

TEST(Cli, AnUnknownShrinkLogLevelIsAUsageErrorListingTheLevels) {
  const auto r = run_command("SHRINK_LOG=loud " + shrink_binary() + " validate recipes/quickstart.yaml");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "SHRINK_LOG must be one of debug, info, warn, error, quiet; got 'loud'")) << r.output;
}

TEST(Cli, UnknownOptionExitsWithUsageError) {
  const auto r = run_shrink("run --bogus x.yaml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unrecognised option '--bogus'"), std::string::npos) << r.output;
}

TEST(Cli, EverySubcommandHasHelp) {
  // The commands are those `shrink --help` lists.
  const auto usage = run_shrink("--help").output;
  const auto start = usage.find("commands:\n"), end = usage.find("\n\n", start);
  ASSERT_NE(start, std::string::npos) << usage;
  std::istringstream lines(usage.substr(start + 10, end - start - 10));
  std::vector<std::string> commands;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string cmd;
    words >> cmd;
    commands.push_back(cmd);
  }
  EXPECT_GE(commands.size(), 5u) << usage;
  for (const auto& cmd : commands) {
    const auto r = run_shrink(cmd + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.output.find("usage: shrink " + cmd), std::string::npos) << r.output;
  }
}

TEST(Cli, ValidateAcceptsAGoodRecipe) {
  const auto r = run_shrink("validate " + write_recipe("cli_validate_ok", synthetic_recipe()).string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok (1 stage, 1 model)"), std::string::npos);
}

TEST(Cli, ValidateReportsFileLineColumnAndKeyWithExitCode2) {
  std::string text = synthetic_recipe();
  text.replace(text.find("batch_size: 32"), 14, "batch_size: 0");
  const auto path = write_recipe("cli_validate_bad", text);
  const auto r = run_shrink("validate " + path.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find(path.string() + ":17:19: stages.0.train.batch_size: expected an integer >= 1, got 0"),
            std::string::npos)
      << r.output;
}

TEST(Cli, ValidatePrintShowsOverridesAndDefaults) {
  const auto r = run_shrink("validate --print --set stages.0.train.epochs=9 " +
                            write_recipe("cli_print", synthetic_recipe()).string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("epochs: 9"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("label_smoothing: 0"), std::string::npos) << r.output;
}

TEST(Cli, EveryShippedRecipeValidates) {
  // Those that start from a file the user makes first are checked with one (test_init.cpp).
  int checked = 0;
  for (const auto& e : fs::recursive_directory_iterator(tests_dir() + "/../recipes")) {
    if (e.path().extension() != ".yaml" || contains(read_file(e.path()), "\n    init:")) continue;
    const auto r = run_shrink("validate " + e.path().string());
    EXPECT_EQ(r.exit_code, 0) << e.path() << ": " << r.output;
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(Cli, MissingDatasetFilesSayHowToInstallThem) {
  const auto dir = scratch_dir("cli_missing_data");
  write_file(dir / "recipe.yaml",
             "name: x\ndevice: cpu\ndata: {dataset: fashion-mnist, root: " + (dir / "nowhere").string() +
                 "}\nmodels: {m: {arch: mlp}}\nstages: [{train: {model: m, epochs: 1}}]\n");
  const auto r = run_shrink("run --out " + (dir / "out").string() + " " + (dir / "recipe.yaml").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("file not found"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("apt-get install dataset-fashion-mnist"), std::string::npos) << r.output;
}

TEST(Cli, RunWritesArtifactsAndAReportThatFollowsTheSchema) {
  const auto path = write_recipe("cli_run", synthetic_recipe());
  const auto out = path.parent_path() / "out";
  const auto r = run_shrink("run --no-progress --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = read_json(out / "report.json");
  EXPECT_EQ(j.at("schema"), "shrink.report/1");
  EXPECT_EQ(j.at("recipe").at("name"), "synthetic-test");
  EXPECT_EQ(j.at("recipe").at("sha256").get<std::string>().size(), 64u);
  EXPECT_EQ(j.at("environment").at("threads"), 1);
  const auto& st = j.at("stages").at(0);
  EXPECT_EQ(st.at("kind"), "train");
  const auto& m = st.at("metrics");
  EXPECT_GT(m.at("accuracy").get<double>(), 0.8);
  EXPECT_EQ(m.at("params"), 64 * 32 + 32 + 32 * 16 + 16 + 16 * 4 + 4);
  EXPECT_EQ(m.at("latency").size(), 2u);
  int64_t smallest = INT64_MAX;
  for (const auto& [fmt, rel] : st.at("artifacts").items()) {
    ASSERT_TRUE(fs::exists(out / rel.get<std::string>())) << fmt;
    smallest = std::min<int64_t>(smallest, static_cast<int64_t>(fs::file_size(out / rel.get<std::string>())));
  }
  EXPECT_EQ(st.at("artifacts").size(), 3u);
  EXPECT_EQ(m.at("size_bytes"), smallest);
  EXPECT_TRUE(fs::exists(out / "report.md"));
}

TEST(Cli, SameSeedGivesTheSameAccuracy) {
  const auto path = write_recipe("cli_determinism", synthetic_recipe(3));
  const auto dir = path.parent_path();
  ASSERT_EQ(run_shrink("run --no-progress --out " + (dir / "a").string() + " " + path.string()).exit_code, 0);
  ASSERT_EQ(run_shrink("run --no-progress --out " + (dir / "b").string() + " " + path.string()).exit_code, 0);
  const auto a = read_json(dir / "a" / "report.json"), b = read_json(dir / "b" / "report.json");
  EXPECT_EQ(a["stages"][0]["metrics"]["accuracy"], b["stages"][0]["metrics"]["accuracy"]);
  EXPECT_EQ(a["stages"][0]["metrics"]["loss"], b["stages"][0]["metrics"]["loss"]);
  EXPECT_EQ(read_file(dir / "a" / "stage-0-train" / "small.pth"), read_file(dir / "b" / "stage-0-train" / "small.pth"));
}

TEST(Cli, SetOverrideChangesTheRun) {
  const auto path = write_recipe("cli_set", synthetic_recipe(3));
  const auto out = path.parent_path() / "out";
  const auto r =
      run_shrink("run --no-progress --set stages.0.train.epochs=1 --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(out / "report.json")["stages"][0]["training"]["epochs"].size(), 1u);
}

TEST(Cli, TheReportKeepsTheEffectiveRecipeAndTheOverridesGiven) {
  const auto path = write_recipe("cli_effective", synthetic_recipe(3));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --set stages.0.train.epochs=1 --out " + out.string() + " " + path.string())
                .exit_code,
            0);
  const auto recipe = read_json(out / "report.json")["recipe"];
  EXPECT_EQ(recipe["overrides"], json::array({"stages.0.train.epochs=1"}));
  EXPECT_EQ(recipe["effective"]["stages"][0]["train"]["epochs"], 1);
  EXPECT_EQ(recipe["effective"]["seed"], 7);
  EXPECT_NE(read_file(out / "report.html").find("<code>stages.0.train.epochs=1</code>"), std::string::npos);
}

TEST(Cli, CompareWritesMarkdownJsonAndHtmlForTwoRuns) {
  const auto path = write_recipe("cli_compare", synthetic_recipe(2));
  const auto dir = path.parent_path();
  ASSERT_EQ(run_shrink("run --no-progress --out " + (dir / "a").string() + " " + path.string()).exit_code, 0);
  ASSERT_EQ(run_shrink("run --no-progress --set seed=8 --out " + (dir / "b").string() + " " + path.string()).exit_code,
            0);
  const auto r = run_shrink("compare " + (dir / "a").string() + " " + (dir / "b" / "report.json").string() +
                            " --baseline 1 --out " + (dir / "cmp").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Baseline: row 1 (synthetic-test (b) [0 train]"), std::string::npos) << r.output;
  const auto j = read_json(dir / "cmp" / "compare.json");
  EXPECT_EQ(j["schema"], "shrink.compare/1");
  EXPECT_EQ(j["rows"].size(), 2u);
  EXPECT_EQ(j["rows"][1]["delta_pt"], 0.0);
  EXPECT_NE(read_file(dir / "cmp" / "compare.html").find("accuracy vs size"), std::string::npos);
  EXPECT_NE(read_file(dir / "cmp" / "compare.md").find("--set seed=8"), std::string::npos);
}

TEST(Cli, CompareOfAMissingRunIsAUsageErrorNamingIt) {
  const auto r = run_shrink("compare /nonexistent/run-x");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("/nonexistent/run-x: no such run folder or report file"), std::string::npos) << r.output;
}

TEST(Cli, BenchTimesEveryStageOfARunAndAFileWithRatiosAgainstTheFirst) {
  const auto path =
      write_recipe("cli_bench", synthetic_recipe(1, "  - quantize: {model: small, method: ptq_dynamic}\n"));
  const auto dir = path.parent_path();
  ASSERT_EQ(run_shrink("run --no-progress --out " + (dir / "run").string() + " " + path.string()).exit_code, 0);
  const auto r =
      run_shrink("bench --no-progress --batch 1,8 --budget 0.3 --threads 1 --json " + (dir / "bench.json").string() +
                 " " + (dir / "run").string() + " " + (dir / "run" / "stage-0-train" / "small.h5").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("run/0-train"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("run/1-quantize"), std::string::npos) << r.output;
  const auto j = read_json(dir / "bench.json");
  ASSERT_EQ(j["results"].size(), 6u);  // 3 models × 2 batch sizes
  EXPECT_EQ(j["results"][0]["speedup_vs_first"], 1.0);
  EXPECT_EQ(j["results"][3]["batch"], 8);
  EXPECT_GT(j["results"][1]["p50_ms"].get<double>(), 0.0);
  for (const auto& row : j["results"]) EXPECT_EQ(row["inputs"], "synthetic test");  // the data each file names
}

TEST(Cli, BenchTimesOnNoiseWhenAskedAndSaysSo) {
  const auto path = write_recipe("cli_bench_noise", synthetic_recipe(1));
  const auto dir = path.parent_path();
  ASSERT_EQ(run_shrink("run --no-progress --out " + (dir / "run").string() + " " + path.string()).exit_code, 0);
  const auto r = run_shrink("bench --no-progress --batch 2 --budget 0.1 --threads 1 --inputs noise --json " +
                            (dir / "bench.json").string() + " " + (dir / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(dir / "bench.json")["results"][0]["inputs"], "noise");
}

TEST(Cli, BenchWithAnUnknownInputsChoiceIsAUsageError) {
  const auto r = run_shrink("bench --inputs images model.pt");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--inputs must be auto, data or noise, got 'images'"), std::string::npos) << r.output;
}

TEST(Cli, BenchOnDataWithAnotherSequenceLengthIsAUsageError) {
  const auto r = run_shrink("bench --inputs data --length 16 model.pt");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--inputs data times text models on their data's sequences"), std::string::npos) << r.output;
}

TEST(Cli, BenchWithAMalformedBatchListIsAUsageError) {
  const auto r = run_shrink("bench --batch 1,x model.pt");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--batch: expected batch sizes in [1, 1048576] separated by commas (1,8,64), got '1,x'"),
            std::string::npos)
      << r.output;
}

TEST(Cli, ResumeSkipsCompletedStagesAndKeepsTheirResults) {
  const std::string second =
      "  - train:\n      model: small\n      epochs: 1\n      batch_size: 64\n"
      "      optimizer: {name: sgd, lr: 0.01}\n";
  const auto path = write_recipe("cli_resume", synthetic_recipe(2, second));
  const auto dir = path.parent_path();
  const auto r = run_full_and_resumed(path, dir, "stage-1-train");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("completed earlier"), std::string::npos) << r.output;
  const auto full = read_json(dir / "full" / "report.json"), resumed = read_json(dir / "cut" / "report.json");
  ASSERT_EQ(resumed["stages"].size(), 2u);
  EXPECT_EQ(full["stages"][1]["metrics"]["accuracy"], resumed["stages"][1]["metrics"]["accuracy"]);
  EXPECT_EQ(read_file(dir / "full" / "stage-1-train" / "small.pth"),
            read_file(dir / "cut" / "stage-1-train" / "small.pth"));
}

TEST(Cli, ATrainStageAfterAPruneStageKeepsItsMasks) {
  const std::string stages =
      "  - prune:\n      model: small\n      method: l1\n      sparsity: 0.6\n"
      "  - train:\n      model: small\n      epochs: 1\n      batch_size: 32\n"
      "      optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n";
  const auto path = write_recipe("cli_prune_then_train", synthetic_recipe(2, stages));
  const auto dir = path.parent_path();
  ASSERT_EQ(run_shrink("run --no-progress --out " + (dir / "run").string() + " " + path.string()).exit_code, 0);
  const auto report = read_json(dir / "run" / "report.json");
  const double pruned = report["stages"][1]["metrics"]["sparsity"].get<double>();
  EXPECT_GT(pruned, 0.5);
  EXPECT_EQ(report["stages"][2]["metrics"]["sparsity"].get<double>(), pruned);
}

TEST(Cli, ResumeRefusesAChangedRecipe) {
  const auto path = write_recipe("cli_resume_changed", synthetic_recipe(1));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto r = run_shrink("run --no-progress --resume --set seed=3 --out " + out.string() + " " + path.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("changed since the interrupted run"), std::string::npos) << r.output;
}

TEST(Cli, EvalReproducesTheReportedAccuracy) {
  const auto path = write_recipe("cli_eval", synthetic_recipe(2));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const double reported = read_json(out / "report.json")["stages"][0]["metrics"]["accuracy"];
  for (const char* fmt : {"pt", "pth", "h5"}) {
    const auto r = run_shrink("eval --json --recipe " + path.string() + " --model small " +
                              (out / "stage-0-train" / (std::string("small.") + fmt)).string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_DOUBLE_EQ(json::parse(r.output)["accuracy"].get<double>(), reported) << fmt;
  }
}

namespace {

// synthetic_recipe(1) on IDX files beside it, seeded: 256 train and 64 test 8 × 8 images, 4 classes.
fs::path idx_recipe(const std::string& name, const std::string& val_split) {
  auto text = synthetic_recipe(1);
  const auto data_begin = text.find("data:\n"), data_end = text.find("models:\n");
  text.replace(data_begin, data_end - data_begin,
               "data:\n"
               "  format: idx\n"
               "  train: {images: train-images.idx, labels: train-labels.idx}\n"
               "  test: {images: test-images.idx, labels: test-labels.idx}\n"
               "  classes: [a, b, c, d]\n"
               "  val_split: " +
                   val_split + "\n");
  const auto path = write_recipe(name, text);
  torch::manual_seed(5);
  for (const auto& [split, n] : {std::pair<std::string, int64_t>{"train", 256}, {"test", 64}}) {
    const auto dir = path.parent_path();
    shrink::data::write_idx(dir / (split + "-images.idx"), torch::randint(0, 256, {n, 8, 8}).to(torch::kByte));
    shrink::data::write_idx(dir / (split + "-labels.idx"), torch::randint(0, 4, {n}).to(torch::kByte));
  }
  return path;
}

// idx_recipe run to `out` beside it, then its train files removed: a trained model and the test
// split are what is left.
struct RunWithoutTrainFiles {
  fs::path recipe, dir, out;
  int exit_code = -1;
  double reported = 0;  // the report's test accuracy
};

RunWithoutTrainFiles run_then_remove_train_files(const std::string& name, const std::string& val_split) {
  RunWithoutTrainFiles r;
  r.recipe = idx_recipe(name, val_split);
  r.dir = r.recipe.parent_path();
  r.out = r.dir / "out";
  r.exit_code = run_shrink("run --no-progress --out " + r.out.string() + " " + r.recipe.string()).exit_code;
  if (r.exit_code == 0) r.reported = read_json(r.out / "report.json")["stages"][0]["metrics"]["accuracy"];
  fs::remove(r.dir / "train-images.idx");
  fs::remove(r.dir / "train-labels.idx");
  return r;
}

}  // namespace

TEST(Cli, EvalAndBenchNeedOnlyTheTestSplitOfTheDataAFileWasTrainedOn) {
  const auto run = run_then_remove_train_files("cli_eval_test_split", "0.1");
  ASSERT_EQ(run.exit_code, 0);
  const auto &dir = run.dir, &out = run.out;
  const double reported = run.reported;
  const auto file = (out / "stage-0-train" / "small.pt").string();
  const auto eval = run_shrink("eval --json " + file);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_DOUBLE_EQ(json::parse(eval.output)["accuracy"].get<double>(), reported);
  const auto bench = run_shrink("bench --no-progress --inputs data --batch 1 --budget 0.05 --threads 1 --json " +
                                (dir / "bench.json").string() + " " + file);
  ASSERT_EQ(bench.exit_code, 0) << bench.output;
  EXPECT_EQ(read_json(dir / "bench.json")["results"][0]["inputs"], "idx test");
}

TEST(Cli, SensitivityWithoutAValidationSplitReadsOnlyTheTestSplit) {
  const auto run = run_then_remove_train_files("cli_sensitivity_test_split", "0");
  ASSERT_EQ(run.exit_code, 0);
  const auto &dir = run.dir, &out = run.out, &path = run.recipe;
  const double reported = run.reported;
  const auto r =
      run_shrink("sensitivity --no-progress --model small --levels 0.5 --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto s = read_json(out / "sensitivity-small.json");
  EXPECT_EQ(s["split"], "test");
  EXPECT_DOUBLE_EQ(s["baseline_accuracy"].get<double>(), reported);
  // A validation split is drawn from the train split, so asking for one needs its files.
  const auto with_val =
      run_shrink("sensitivity --no-progress --model small --levels 0.5 --set data.val_split=0.1 --out " + out.string() +
                 " " + path.string());
  EXPECT_EQ(with_val.exit_code, 1);
  EXPECT_NE(with_val.output.find("file not found: " + (dir / "train-images.idx").string()), std::string::npos)
      << with_val.output;
}

TEST(Cli, EvalRefusesSetWithoutARecipeItCouldOverride) {
  const auto r = run_shrink("eval no_such_file.pt --set zzz=1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--set zzz=1 needs --recipe")) << r.output;
}

TEST(Cli, EvalRefusesABatchPastTheMemoryBudgetNamingTheOption) {
  const auto path = write_recipe("cli_eval_batch", synthetic_recipe(1));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto r =
      run_shrink("eval --no-progress --batch-size 1000000000000 " + (out / "stage-0-train" / "small.h5").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--batch-size 1000000000000: a batch of 1000000000000 samples needs ")) << r.output;
}

TEST(Cli, EvalOnDataOfAnotherShapeNamesTheFileAndTheShape) {
  const auto path = write_recipe("cli_eval_shape", synthetic_recipe(1));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto file = (out / "stage-0-train" / "small.h5").string();
  const auto r =
      run_shrink("eval --no-progress --data '{format: synthetic, synthetic: {shape: [20], classes: 4}}' " + file);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, file + ": the model does not take the data's samples of shape [20]: ")) << r.output;
}

TEST(Cli, MaxMemorySetsTheBudgetValidationChecksModelsAgainst) {
  const auto path = write_recipe("cli_max_memory", synthetic_recipe(1));
  const std::string big_batches = " --set stages.0.train.batch_size=1024 ";
  EXPECT_EQ(run_shrink("validate" + big_batches + path.string()).exit_code, 0);
  // Room for the synthetic data (128 KiB) but not for the model's training batches of 1024.
  const auto r = run_shrink("validate --max-memory 256K" + big_batches + path.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "models.small: the model's ")) << r.output;
  EXPECT_TRUE(contains(r.output, "in training at batch 1024")) << r.output;
  EXPECT_TRUE(contains(r.output, "more than the memory budget of 256.0 KiB (set by --max-memory)")) << r.output;
  const auto bad = run_shrink("validate --max-memory lots " + path.string());
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_TRUE(contains(bad.output, "--max-memory expects a size such as 8G, 512M or 4096 (bytes), got 'lots'"))
      << bad.output;
}

TEST(Cli, EvalAndSensitivityTakeADeviceAndRefuseAnUnknownOneAsUsage) {
  const auto path = write_recipe("cli_eval_device", synthetic_recipe(1));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto file = (out / "stage-0-train" / "small.h5").string();
  const double reported = read_json(out / "report.json")["stages"][0]["metrics"]["accuracy"];
  const auto on_cpu = run_shrink("eval --json --device cpu " + file);
  ASSERT_EQ(on_cpu.exit_code, 0) << on_cpu.output;
  EXPECT_DOUBLE_EQ(json::parse(on_cpu.output)["accuracy"].get<double>(), reported);
  const auto eval = run_shrink("eval --device tpu " + file);
  EXPECT_EQ(eval.exit_code, 2);
  EXPECT_NE(eval.output.find("expected one of cpu, cuda, cuda:N, auto; got 'tpu'"), std::string::npos) << eval.output;
  const auto sens =
      run_shrink("sensitivity --no-progress --model small --device tpu --out " + out.string() + " " + path.string());
  EXPECT_EQ(sens.exit_code, 2);
  EXPECT_NE(sens.output.find("got 'tpu'"), std::string::npos) << sens.output;
}

TEST(Cli, EvalWithAWrongModelSpecNamesTheMismatch) {
  const auto path = write_recipe("cli_eval_bad", synthetic_recipe(1));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto r = run_shrink(
      "eval --model '{arch: mlp, hidden: [32, 8]}' --data '{format: synthetic, synthetic: "
      "{samples: 64, test_samples: 64, classes: 4, shape: [1, 8, 8]}}' " +
      (out / "stage-0-train" / "small.h5").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("'classifier.2.weight' has shape [16, 32], the model expects [8, 32]"), std::string::npos)
      << r.output;
}

namespace {

const std::string kPruneStage =
    "  - prune:\n"
    "      model: small\n"
    "      scope: global\n"
    "      sparsity: 0.8\n"
    "      schedule: {kind: agp, end_epoch: 2, frequency: 4}\n"
    "      finetune: {epochs: 3, batch_size: 32, optimizer: {name: sgd, lr: 0.02, momentum: 0.9}}\n";

}  // namespace

TEST(Cli, PruneStageReachesItsSparsityAndReportsLayers) {
  const auto path = write_recipe("cli_prune", synthetic_recipe(3, kPruneStage));
  const auto out = path.parent_path() / "out";
  // Wide enough that compressed storage outweighs the per-entry file overhead.
  const auto r =
      run_shrink("run --no-progress --set models.small.hidden=[256,128] --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = read_json(out / "report.json");
  const auto& st = j["stages"][1];
  EXPECT_EQ(st["kind"], "prune");
  EXPECT_NEAR(st["pruning"]["sparsity"].get<double>(), 0.8, 1e-3);
  EXPECT_GT(st["metrics"]["sparsity"].get<double>(), 0.75);
  ASSERT_EQ(st["layers"].size(), 3u);
  EXPECT_EQ(st["layers"][0]["name"], "classifier.0.weight");
  EXPECT_EQ(st["layers"][0]["shape"], json::array({256, 64}));
  EXPECT_LT(st["metrics"]["size_bytes"].get<int64_t>(), j["stages"][0]["metrics"]["size_bytes"].get<int64_t>() / 2);
  EXPECT_NE(read_file(out / "report.md").find("## Layers after stage 1 (prune small)"), std::string::npos);
  // The pruned export evaluates to the reported accuracy, masks and all.
  const auto e = run_shrink("eval --json --set models.small.hidden=[256,128] --recipe " + path.string() +
                            " --model small " + (out / "stage-1-prune" / "small.h5").string());
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_DOUBLE_EQ(json::parse(e.output)["accuracy"].get<double>(), st["metrics"]["accuracy"].get<double>());
}

TEST(Cli, InspectShowsStorageSparsityAndBytes) {
  const auto path = write_recipe("cli_inspect", synthetic_recipe(1, kPruneStage));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(
      run_shrink("run --no-progress --set models.small.hidden=[256,16] --out " + out.string() + " " + path.string())
          .exit_code,
      0);
  const auto r = run_shrink("inspect --json " + (out / "stage-1-prune" / "small.pt").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = json::parse(r.output);
  std::map<std::string, json> by_name;
  for (const auto& t : j["tensors"]) by_name[t["name"]] = t;
  EXPECT_EQ(by_name.at("classifier.0.weight")["storage"], "bitmask");
  EXPECT_EQ(by_name.at("classifier.0.weight_mask")["storage"], "pattern of classifier.0.weight");
  EXPECT_EQ(by_name.at("classifier.0.weight_mask")["bytes"], 0);
  EXPECT_EQ(by_name.at("classifier.0.bias")["storage"], "dense");
  EXPECT_EQ(by_name.at("classifier.0.weight")["shape"], json::array({256, 64}));
  EXPECT_EQ(by_name.at("classifier.4.weight")["storage"], "dense");  // 16x4: compressing saves too little
  const auto text = run_shrink("inspect " + (out / "stage-1-prune" / "small.h5").string());
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.output.find("classifier.0.weight"), std::string::npos);
}

TEST(Cli, InspectRejectsACorruptFile) {
  const auto dir = scratch_dir("cli_inspect_corrupt");
  write_file(dir / "x.h5", "not hdf5");
  const auto r = run_shrink("inspect " + (dir / "x.h5").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("x.h5: not a HDF5 file"), std::string::npos) << r.output;
}

TEST(Cli, SensitivityWritesJsonAndAReportTable) {
  const auto path = write_recipe("cli_sensitivity", synthetic_recipe(2));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto r = run_shrink("sensitivity --no-progress --model small --levels 0.5 0.9 --out " + out.string() + " " +
                            path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto s = read_json(out / "sensitivity-small.json");
  EXPECT_EQ(s["levels"], json::array({0.5, 0.9}));
  EXPECT_EQ(s["tensors"]["classifier.0.weight"].size(), 2u);
  EXPECT_EQ(s["tensors"].size(), 3u);
  EXPECT_TRUE(read_json(out / "report.json").contains("sensitivity"));
  EXPECT_NE(read_file(out / "report.md").find("## Pruning sensitivity of small"), std::string::npos);
}

TEST(Cli, ChannelSensitivityPrunesEachLayersChannelsAloneAndSaysSoInTheReport) {
  const auto path = write_recipe("cli_sensitivity_channels", synthetic_recipe(2));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto r = run_shrink(
      "sensitivity --no-progress --model small --structure channels --method l2 --levels 0 0.5 "
      "--out " +
      out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto s = read_json(out / "sensitivity-small.json");
  EXPECT_EQ(s["structure"], "channels");
  // The two hidden layers (the output layer's channels are the classes); level 0 is the baseline.
  ASSERT_EQ(s["tensors"].size(), 2u) << s.dump();
  EXPECT_DOUBLE_EQ(s["tensors"]["classifier.0"][0].get<double>(), s["baseline_accuracy"].get<double>());
  EXPECT_NE(read_file(out / "report.md").find("## Channel pruning sensitivity of small"), std::string::npos);
  const auto bad = run_shrink("sensitivity --no-progress --model small --structure rows --out " + out.string() + " " +
                              path.string());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--structure must be one of weights, channels, n:m; got 'rows'"), std::string::npos)
      << bad.output;
}

TEST(Cli, SensitivityOfARunEndingInInt8UsesTheLastFloatWeights) {
  const auto path =
      write_recipe("cli_sensitivity_int8", synthetic_recipe(1, "  - quantize: {model: small, method: ptq_dynamic}\n"));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto r =
      run_shrink("sensitivity --no-progress --model small --levels 0.5 --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(read_json(out / "sensitivity-small.json")["weights"].get<std::string>().find("stage-0-train"),
            std::string::npos);
}

TEST(Cli, SensitivityWithoutTrainedWeightsSaysWhatToDo) {
  const auto path = write_recipe("cli_sensitivity_none", synthetic_recipe(1));
  const auto r =
      run_shrink("sensitivity --model small --out " + (path.parent_path() / "nothing").string() + " " + path.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("run the recipe first"), std::string::npos) << r.output;
}

TEST(Cli, ResumedPruningRunMatchesAnUninterruptedOne) {
  const auto path = write_recipe("cli_prune_resume", synthetic_recipe(2, kPruneStage));
  const auto dir = path.parent_path();
  const auto r = run_full_and_resumed(path, dir, "stage-1-prune");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_file(dir / "full" / "stage-1-prune" / "small.pth"),
            read_file(dir / "cut" / "stage-1-prune" / "small.pth"));
}

TEST(Cli, EvalNeedsNoModelForAnyFileOfAnyStage) {
  const auto path = write_recipe("cli_eval_any", synthetic_recipe(2, kPruneStage));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto j = read_json(out / "report.json");
  ASSERT_EQ(j["stages"].size(), 2u);
  for (const auto& st : j["stages"]) {
    for (const auto& [fmt, rel] : st["artifacts"].items()) {
      // From another folder: the file alone says which model and data.
      const auto r =
          run_command("cd / && " + shrink_binary() + " eval --json " + (out / rel.get<std::string>()).string());
      ASSERT_EQ(r.exit_code, 0) << r.output;
      EXPECT_DOUBLE_EQ(json::parse(r.output)["accuracy"].get<double>(), st["metrics"]["accuracy"].get<double>())
          << rel.get<std::string>();
    }
  }
}

TEST(Cli, EvalOfAPthFromElsewhereAsksWhichModelItHolds) {
  const auto path = write_recipe("cli_eval_bare", synthetic_recipe(1));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  fs::remove(out / "stage-0-train" / "small.pth.json");
  const auto r = run_shrink("eval " + (out / "stage-0-train" / "small.pth").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("small.pth: no model description in the file; say which model it holds with --model"),
            std::string::npos)
      << r.output;
}

TEST(Cli, InspectGivesTheSameFiguresForEveryFormatOfAModel) {
  const std::string convnet_prune =
      "  - prune:\n      model: small\n      sparsity: 0.7\n      finetune: {epochs: 1, batch_size: 32}\n";
  std::string text = synthetic_recipe(1, convnet_prune);
  const std::string mlp = "    arch: mlp\n    hidden: [32, 16]\n";
  text.replace(text.find(mlp), mlp.size(), "    arch: convnet\n    channels: [8]\n    fc: [16]\n");
  const auto path = write_recipe("cli_inspect_agree", text);
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  std::map<std::string, json> by_format;
  for (const char* fmt : {"pt", "pth", "h5"}) {
    const auto r = run_shrink("inspect --json " + (out / "stage-1-prune" / (std::string("small.") + fmt)).string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    by_format[fmt] = json::parse(r.output);
  }
  const auto summary = [](const json& j) {
    // Per tensor: name, dtype, shape, sparsity and whether it is a buffer — what the formats share.
    json out = json::array();
    for (const auto& t : j["tensors"]) out.push_back({t["name"], t["dtype"], t["shape"], t["sparsity"], t["buffer"]});
    return out;
  };
  EXPECT_EQ(summary(by_format["pt"]), summary(by_format["h5"]));
  EXPECT_EQ(summary(by_format["pth"]), summary(by_format["h5"]));
  EXPECT_EQ(by_format["pt"]["parameter_sparsity"], by_format["h5"]["parameter_sparsity"]);
  EXPECT_EQ(by_format["pth"]["parameter_sparsity"], by_format["h5"]["parameter_sparsity"]);
  bool any_buffer = false;
  for (const auto& t : by_format["pth"]["tensors"]) any_buffer = any_buffer || t["buffer"].get<bool>();
  EXPECT_TRUE(any_buffer);
}

namespace {

// Two pruning modifiers on separate layer groups, with their own AGP windows, in one train stage
// long enough (about a second an epoch) to be killed in the middle.
std::string two_modifier_recipe() {
  return "name: two-modifiers\nseed: 11\ndevice: cpu\nthreads: 1\n"
         "data:\n  format: synthetic\n"
         "  synthetic: {samples: 24000, test_samples: 512, classes: 4, shape: [1, 16, 16], noise: 2.0}\n"
         "models:\n  net:\n    arch: mlp\n    hidden: [256, 128]\n"
         "stages:\n"
         "  - train: {model: net, epochs: 1, batch_size: 32, optimizer: {name: sgd, lr: 0.02}}\n"
         "  - train:\n"
         "      model: net\n      epochs: 4\n      batch_size: 16\n      optimizer: {name: sgd, lr: 0.01, momentum: "
         "0.9}\n"
         "      modifiers:\n"
         "        - prune:\n            include: ['classifier\\.0\\.weight']\n            sparsity: 0.9\n"
         "            schedule: {kind: agp, start_epoch: 0, end_epoch: 1.5, frequency: 20}\n"
         "        - prune:\n            include: ['classifier\\.[24]\\.weight']\n            sparsity: 0.5\n"
         "            schedule: {kind: agp, start_epoch: 1, end_epoch: 3, frequency: 20}\n"
         "report: {latency_batch_sizes: [1], warmup: 1, iterations: 3}\n";
}

}  // namespace

TEST(Cli, TwoModifiersReachTheirTargetsAndAKilledRunResumesBitIdentical) {
  const auto path = write_recipe("cli_two_modifiers", two_modifier_recipe());
  const auto dir = path.parent_path();
  ASSERT_EQ(run_shrink("run --no-progress --out " + (dir / "full").string() + " " + path.string()).exit_code, 0);
  const auto full = read_json(dir / "full" / "report.json");
  const auto& mods = full["stages"][1]["modifiers"];
  ASSERT_EQ(mods.size(), 2u);
  EXPECT_NEAR(mods[0]["sparsity"].get<double>(), 0.9, 1e-3);
  EXPECT_NEAR(mods[1]["sparsity"].get<double>(), 0.5, 1e-3);
  EXPECT_EQ(mods[0]["end_epoch"], 1.5);
  EXPECT_EQ(mods[1]["start_epoch"], 1.0);
  EXPECT_NE(read_file(dir / "full" / "report.md").find("## Modifiers of stage 1 (train net)"), std::string::npos);

  // SIGKILL once the stage's first epoch checkpoint exists: in the middle of its second epoch.
  const int pid = start_shrink("run --no-progress --out " + (dir / "cut").string() + " " + path.string());
  const auto checkpoint = dir / "cut" / "work" / "stage-1-train" / "checkpoint.pt";
  for (int i = 0; i < 60000 && !fs::exists(checkpoint); ++i) ::usleep(1000);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(fs::exists(checkpoint)) << "the run never checkpointed stage 1";
  ASSERT_EQ(read_json(dir / "cut" / "run_state.json")["completed_stages"], 1) << "killed too late: stage 1 finished";

  const auto r = run_shrink("run --no-progress --resume --out " + (dir / "cut").string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(dir / "full" / "stage-1-train" / "net.pth"),
            read_file(dir / "cut" / "stage-1-train" / "net.pth"));
  EXPECT_EQ(read_json(dir / "cut" / "report.json")["stages"][1]["modifiers"], mods);
  // The whole training history, the epoch before the kill included, with the same losses.
  const auto epochs_of = [](const json& report) {
    auto epochs = report["stages"][1]["training"]["epochs"];
    for (auto& e : epochs) e.erase("seconds"), e.erase("samples_per_s");
    return epochs;
  };
  EXPECT_EQ(epochs_of(read_json(dir / "cut" / "report.json")), epochs_of(full));
}

TEST(Cli, AThreadCountPastTheBoundIsAUsageErrorNotAHang) {
  const auto path = write_recipe("cli_threads_flag", synthetic_recipe(1));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto r = run_shrink("eval --threads 100000 " + (out / "stage-0-train" / "small.h5").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("threads must be in [0, 1024] (0 = all cores), got 100000"), std::string::npos) << r.output;
}

namespace {

const char* kQuantizeStage =
    "  - quantize:\n"
    "      model: small\n"
    "      calibration_batches: 4\n"
    "      batch_size: 32\n";

}  // namespace

TEST(Cli, QuantizeStageWritesAnInt8ModelThatEvalRunsOnInt8Kernels) {
  const auto path = write_recipe("cli_quantize", synthetic_recipe(3, kQuantizeStage));
  const auto out = path.parent_path() / "out";
  // Wide enough that the weights, not the per-entry file overhead, make the size.
  const auto r =
      run_shrink("run --no-progress --set models.small.hidden=[1024,512] --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = read_json(out / "report.json");
  const auto& st = j["stages"][1];
  EXPECT_EQ(st["kind"], "quantize");
  EXPECT_EQ(st["quantization"]["method"], "static");
  EXPECT_EQ(st["quantization"]["int8_layers"], json::array({"classifier.0", "classifier.2", "classifier.4"}));
  EXPECT_TRUE(st["quantization"]["float_layers"].empty());
  // int8 on disk: well under a third of the float file, and within a point of its accuracy.
  EXPECT_LT(st["metrics"]["size_bytes"].get<int64_t>(),
            j["stages"][0]["metrics"]["size_bytes"].get<int64_t>() * 3 / 10);
  EXPECT_NEAR(st["metrics"]["accuracy"].get<double>(), j["stages"][0]["metrics"]["accuracy"].get<double>(), 0.01);
  EXPECT_NE(read_file(out / "report.md").find("## Quantization of stage 1 (quantize small)"), std::string::npos);
  for (const char* fmt : {"pt", "pth", "h5"}) {
    const auto e = run_shrink("eval --json " + (out / "stage-1-quantize" / (std::string("small.") + fmt)).string());
    ASSERT_EQ(e.exit_code, 0) << e.output;
    EXPECT_DOUBLE_EQ(json::parse(e.output)["accuracy"].get<double>(), st["metrics"]["accuracy"].get<double>()) << fmt;
  }
}

TEST(Cli, QatModifierEndsTheStageWithAnInt8Model) {
  const std::string qat_stage =
      "  - train:\n"
      "      model: small\n"
      "      epochs: 2\n"
      "      batch_size: 32\n"
      "      optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n"
      "      modifiers:\n"
      "        - qat: {freeze_observers_epoch: 1}\n";
  const auto path = write_recipe("cli_qat", synthetic_recipe(2, qat_stage));
  const auto out = path.parent_path() / "out";
  const auto r = run_shrink("run --no-progress --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = read_json(out / "report.json");
  const auto& st = j["stages"][1];
  EXPECT_EQ(st["modifiers"][0]["kind"], "qat");
  EXPECT_EQ(st["quantization"]["int8_layers"].size(), 3u);
  const auto e = run_shrink("eval --json " + (out / "stage-1-train" / "small.h5").string());
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_DOUBLE_EQ(json::parse(e.output)["accuracy"].get<double>(), st["metrics"]["accuracy"].get<double>());
}

TEST(Cli, QuantizeStageKeysAreValidatedBeforeAnyWork) {
  const auto path =
      write_recipe("cli_quantize_bad", synthetic_recipe(1,
                                                        "  - quantize:\n"
                                                        "      model: small\n"
                                                        "      method: fancy\n"
                                                        "      weights: {kind: histogram, per_channel: true}\n"));
  const auto r = run_shrink("validate " + path.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("stages.1.quantize.method"), std::string::npos) << r.output;
}

TEST(Cli, NoStageMayFollowTheConversionOfItsModelToInt8) {
  const auto path =
      write_recipe("cli_after_int8", synthetic_recipe(1, std::string(kQuantizeStage) + "  - train:\n"
                                                                                       "      model: small\n"
                                                                                       "      epochs: 1\n"));
  const auto r = run_shrink("validate " + path.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("stages.2.train"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model 'small' is int8 after stage 1 (quantize)"), std::string::npos) << r.output;
}

TEST(Cli, ARecipeNameCannotLeaveTheRunsFolder) {
  const auto path = write_recipe("cli_escape", synthetic_recipe(1));
  const auto r = run_shrink("validate " + path.string() + " --set name=../../x");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("name: a folder name for runs/<name>: not empty, no '/' or '\\', not starting with '.'; "
                          "got '../../x'"),
            std::string::npos)
      << r.output;
}

TEST(Cli, DistillModifierTrainsAStudentFromATeacherOfTheRecipe) {
  std::string text = synthetic_recipe(2,
                                      "  - train:\n"
                                      "      model: student\n"
                                      "      epochs: 2\n"
                                      "      batch_size: 32\n"
                                      "      optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n"
                                      "      modifiers:\n"
                                      "        - distill: {teacher: small, temperature: 4, alpha: 0.7}\n");
  text.replace(text.find("stages:"), 7, "  student:\n    arch: mlp\n    hidden: [8]\nstages:");
  const auto path = write_recipe("cli_distill", text);
  const auto out = path.parent_path() / "out";
  const auto r = run_shrink("run --no-progress --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = read_json(out / "report.json");
  const auto& m = j["stages"][1]["modifiers"][0];
  EXPECT_EQ(m["kind"], "distill");
  EXPECT_EQ(m["teacher"], "small");
  EXPECT_EQ(m["alpha"], 0.7);
  EXPECT_GT(m["distilled_steps"].get<int64_t>(), 0);
}

namespace {

// The synthetic recipe with a student (mlp [8]) distilled from `small` by `stage`.
std::string student_recipe(const std::string& stage) {
  std::string text = synthetic_recipe(2, stage);
  text.replace(text.find("stages:"), 7, "  student:\n    arch: mlp\n    hidden: [8]\nstages:");
  return text;
}

constexpr const char* kDistillStage =
    "  - distill:\n"
    "      model: student\n"
    "      teacher: small\n"
    "      epochs: 2\n"
    "      batch_size: 32\n"
    "      optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n";

}  // namespace

TEST(Cli, ABaselineReportsTheStudentTrainedAloneAndLeavesTheDistilledStudentUnchanged) {
  const auto plain = write_recipe("cli_distill_plain", student_recipe(kDistillStage));
  const auto with_baseline =
      write_recipe("cli_distill_baseline", student_recipe(std::string(kDistillStage) + "      baseline: true\n"));
  const auto out_plain = plain.parent_path() / "out", out_baseline = with_baseline.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out_plain.string() + " " + plain.string()).exit_code, 0);
  const auto r = run_shrink("run --no-progress --out " + out_baseline.string() + " " + with_baseline.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto a = read_json(out_plain / "report.json")["stages"][1],
             b = read_json(out_baseline / "report.json")["stages"][1];
  EXPECT_FALSE(a["distillation"].contains("student_alone_accuracy"));
  ASSERT_TRUE(b["distillation"].contains("student_alone_accuracy"));
  EXPECT_EQ(b["distillation"]["student_alone_training"]["epochs"].size(), 2u);  // its curve, for report.html
  EXPECT_EQ(a["metrics"]["accuracy"], b["metrics"]["accuracy"]);
  EXPECT_EQ(a["metrics"]["loss"], b["metrics"]["loss"]);
  const auto md = read_file(out_baseline / "report.md");
  EXPECT_NE(md.find("| trained alone (same weights, seed, batches) |"), std::string::npos) << md;
}

TEST(Cli, FeatureDistillationInARecipeTrainsAnAdapterThatStaysOutOfTheStudentsFile) {
  const auto path =
      write_recipe("cli_distill_features",
                   student_recipe(std::string(kDistillStage) +
                                  "      features:\n"
                                  "        - {student: classifier.1, teacher: classifier.1, weight: 0.5}\n"));
  const auto out = path.parent_path() / "out";
  const auto r = run_shrink("run --no-progress --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto st = read_json(out / "report.json")["stages"][1];
  EXPECT_EQ(st["distillation"]["features"][0]["adapter"], true);  // student width 8, teacher 32
  EXPECT_EQ(st["distillation"]["cached_steps"], 0);               // hints need the teacher every step
  const auto inspected = run_shrink("inspect --json " + (out / "stage-1-distill" / "student.pt").string());
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_EQ(inspected.output.find("adapter"), std::string::npos) << inspected.output;
}

TEST(Cli, AFeatureLayerTheStudentLacksIsARecipeErrorListingItsLayers) {
  const auto path = write_recipe(
      "cli_distill_bad_feature",
      student_recipe(std::string(kDistillStage) + "      features:\n"
                                                  "        - {student: classifier.7, teacher: classifier.1}\n"));
  const auto r = run_shrink("validate " + path.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(
                "the student has no layer 'classifier.7'; its layers are: classifier.0, classifier.1, classifier.2"),
            std::string::npos)
      << r.output;
}

TEST(Cli, InspectLayersListsEachLayerWithItsOutputShape) {
  const auto path = write_recipe("cli_inspect_layers", synthetic_recipe(1));
  const auto out = path.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + out.string() + " " + path.string()).exit_code, 0);
  const auto r = run_shrink("inspect --layers " + (out / "stage-0-train" / "small.h5").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("classifier.1             ReLU                         1x32"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("classifier.4             Linear                       1x4"), std::string::npos) << r.output;
}

TEST(Cli, AnInt8FileTeachesAndItsAccuracyIsReported) {
  const auto teacher_recipe = write_recipe("cli_int8_teacher", synthetic_recipe(2, kQuantizeStage));
  const auto teacher_out = teacher_recipe.parent_path() / "out";
  ASSERT_EQ(run_shrink("run --no-progress --out " + teacher_out.string() + " " + teacher_recipe.string()).exit_code, 0);
  const auto teacher_file = teacher_out / "stage-1-quantize" / "small.h5";
  std::string stage = kDistillStage;
  stage.replace(stage.find("teacher: small"), 14, "teacher_file: " + teacher_file.string());
  const auto path = write_recipe("cli_int8_teacher_student", student_recipe(stage));
  const auto out = path.parent_path() / "out";
  const auto r = run_shrink("run --no-progress --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto st = read_json(out / "report.json")["stages"][1];
  EXPECT_EQ(st["distillation"]["teacher"], teacher_file.string());
  EXPECT_DOUBLE_EQ(st["distillation"]["teacher_accuracy"].get<double>(),
                   read_json(teacher_out / "report.json")["stages"][1]["metrics"]["accuracy"].get<double>());
  EXPECT_GT(st["distillation"]["distilled_steps"].get<int64_t>(), 0);
}

TEST(Cli, DistillStageReportsTheTeacherAndItsAccuracy) {
  std::string text = synthetic_recipe(2,
                                      "  - distill:\n"
                                      "      model: student\n"
                                      "      teacher: small\n"
                                      "      epochs: 2\n"
                                      "      batch_size: 32\n"
                                      "      optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n");
  text.replace(text.find("stages:"), 7, "  student:\n    arch: mlp\n    hidden: [8]\nstages:");
  const auto path = write_recipe("cli_distill_stage", text);
  const auto out = path.parent_path() / "out";
  const auto r = run_shrink("run --no-progress --out " + out.string() + " " + path.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = read_json(out / "report.json");
  const auto& st = j["stages"][1];
  EXPECT_EQ(st["kind"], "distill");
  EXPECT_EQ(st["model"], "student");
  EXPECT_EQ(st["distillation"]["teacher"], "small");
  EXPECT_DOUBLE_EQ(st["distillation"]["teacher_accuracy"].get<double>(),
                   j["stages"][0]["metrics"]["accuracy"].get<double>());
}
