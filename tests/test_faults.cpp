// Faults around a run, end to end through the shrink executable: a full disk, a killed run, two
// runs into one folder, and recipes that ask for more than the machine has.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "helpers.h"

namespace fs = std::filesystem;
using namespace shrink::testing;

namespace {

std::string run_args(const fs::path& out, const fs::path& recipe, const std::string& extra = "") {
  return "run --no-progress " + extra + " --out " + out.string() + " " + recipe.string();
}

std::vector<std::string> temp_files_under(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(e.path().string());
  }
  return found;
}

}  // namespace

TEST(Faults, ARunOutOfDiskSpaceExitsOneNamingTheFileAndLeavesNoTemporary) {
  const auto recipe = write_recipe("faults_full_disk", synthetic_recipe(2));
  const auto out = recipe.parent_path() / "out";
  // 8 KiB per file: the report's and run state's small files fit, the model files do not.
  const auto r =
      run_command("bash -c 'ulimit -f 8 && exec " + shrink_binary() + " " + run_args(out, recipe) + "' 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "cannot write " + out.string())) << r.output;
  EXPECT_TRUE(contains(r.output, "File too large")) << r.output;
  EXPECT_TRUE(temp_files_under(out).empty());
  // With space again, the interrupted run resumes to the end.
  const auto resumed = run_shrink(run_args(out, recipe, "--resume"));
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
}

TEST(Faults, ASecondRunIntoAFolderHoldingARunIsRefusedAndChangesNothing) {
  const auto recipe = write_recipe("faults_second_run", synthetic_recipe(1));
  const auto out = recipe.parent_path() / "out";
  ASSERT_EQ(run_shrink(run_args(out, recipe)).exit_code, 0);
  const std::string report = read_file(out / "report.json");
  const auto r = run_shrink(run_args(out, recipe));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(
      contains(r.output, out.string() + ": already holds a run; pass --resume to continue it, --force to replace it"))
      << r.output;
  EXPECT_EQ(read_file(out / "report.json"), report);
}

TEST(Faults, ForceReplacesTheEarlierRunLeavingNoneOfItsStageFolders) {
  const auto recipe = write_recipe("faults_force", synthetic_recipe(1, "  - prune: {model: small, sparsity: 0.5}\n"));
  const auto out = recipe.parent_path() / "out";
  ASSERT_EQ(run_shrink(run_args(out, recipe)).exit_code, 0);
  ASSERT_TRUE(fs::exists(out / "stage-1-prune"));
  write_file(recipe, synthetic_recipe(1));
  const auto r = run_shrink(run_args(out, recipe, "--force"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(out / "stage-1-prune"));
  EXPECT_EQ(nlohmann::json::parse(read_file(out / "report.json"))["stages"].size(), 1u);
}

TEST(Faults, AFolderWithOtherFilesIsNeverUsedOrClearedEvenWithForce) {
  const auto recipe = write_recipe("faults_foreign_folder", synthetic_recipe(1));
  const auto out = recipe.parent_path() / "photos";
  write_file(out / "holiday.jpg", "not a run");
  for (const char* flag : {"", "--force"}) {
    const auto r = run_shrink(run_args(out, recipe, flag));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_TRUE(contains(r.output, "holds files that are not a shrink run (holiday.jpg")) << r.output;
  }
  EXPECT_EQ(read_file(out / "holiday.jpg"), "not a run");
}

TEST(Faults, ARunIntoAFolderAnotherRunIsWritingIsRefusedNamingItsPid) {
  const auto recipe = write_recipe("faults_locked", synthetic_recipe(200));
  const auto out = recipe.parent_path() / "out";
  const int pid = start_shrink(run_args(out, recipe, "--set data.synthetic.samples=20000"));
  for (int i = 0; i < 20000 && !fs::exists(out / "run_state.json"); ++i) ::usleep(1000);
  const auto r = run_shrink(run_args(out, recipe, "--resume --set data.synthetic.samples=20000"));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, out.string() + ": in use by another shrink process (pid " + std::to_string(pid) + ")"))
      << r.output;
}

TEST(Faults, ResumeRemovesTheTemporariesAKilledWriteLeftAndEndsBitIdentical) {
  const auto recipe = write_recipe("faults_stale_temp", synthetic_recipe(3));
  const auto dir = recipe.parent_path();
  ASSERT_EQ(run_shrink(run_args(dir / "full", recipe)).exit_code, 0);
  // SIGKILL once stage 0 has checkpointed; then plant what a write killed mid-way leaves.
  const int pid = start_shrink(run_args(dir / "cut", recipe));
  const auto checkpoint = dir / "cut" / "work" / "stage-0-train" / "checkpoint.pt";
  for (int i = 0; i < 60000 && !fs::exists(checkpoint); ++i) ::usleep(1000);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  write_file(dir / "cut" / "work" / "stage-0-train" / "checkpoint.pt.tmp.99999", std::string(4096, 'x'));
  write_file(dir / "cut" / "report.json.tmp.99999", "{");
  const auto r = run_shrink(run_args(dir / "cut", recipe, "--resume"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The two planted, and one more when the kill landed inside one of shrink's own writes.
  std::smatch removed;
  ASSERT_TRUE(
      std::regex_search(r.output, removed, std::regex("removed (\\d+) temporary files an interrupted run left behind")))
      << r.output;
  EXPECT_GE(std::stoi(removed[1]), 2) << r.output;
  EXPECT_TRUE(temp_files_under(dir / "cut").empty());
  EXPECT_TRUE(read_file(dir / "full" / "stage-0-train" / "small.h5") ==
              read_file(dir / "cut" / "stage-0-train" / "small.h5"));
}

TEST(Faults, AModelPastTheMemoryBudgetIsARecipeErrorAtItsKey) {
  const auto recipe = write_recipe("faults_huge_model", synthetic_recipe(1));
  const auto r =
      run_shrink(run_args(recipe.parent_path() / "out", recipe, "--set 'models.small.hidden=[100000000,100000000]'"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, recipe.string() + ":11:5: models.small: the model's ")) << r.output;
  EXPECT_TRUE(contains(r.output, "more than the memory budget")) << r.output;
  EXPECT_FALSE(fs::exists(recipe.parent_path() / "out"));
}

TEST(Faults, HugeLatencyBatchesAndIterationCountsAreRecipeErrorsBeforeAnyTraining) {
  const auto recipe = write_recipe("faults_huge_report", synthetic_recipe(1));
  const auto out = recipe.parent_path() / "out";
  auto r = run_shrink(run_args(out, recipe, "--set report.iterations=9000000000000000000"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "report.iterations: expected an integer in [1, 1e+06]")) << r.output;
  r = run_shrink(run_args(out, recipe, "--set 'report.latency_batch_sizes=[1000000000000]'"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "report.latency_batch_sizes.0: expected an integer in [1, 65536]")) << r.output;
  r = run_shrink(
      run_args(out, recipe, "--set 'data.synthetic.shape=[1,1024,1024]' --set 'report.latency_batch_sizes=[65536]'"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(
      contains(r.output, "report.latency_batch_sizes: a 65536 x 1 x 1024 x 1024 float tensor: needs 256.00 GiB"))
      << r.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST(Faults, SyntheticDataWithoutItsMapTakesTheDocumentedDefaults) {
  const auto recipe =
      write_recipe("faults_synthetic_defaults",
                   "name: d\nseed: 1\nthreads: 1\ndata: {format: synthetic}\nmodels:\n  m: {arch: mlp, hidden: [8]}\n"
                   "stages:\n  - train: {model: m, epochs: 1, batch_size: 64}\n"
                   "report: {latency_batch_sizes: [1], warmup: 0, iterations: 1}\n");
  const auto r = run_shrink(run_args(recipe.parent_path() / "out", recipe));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(Faults, ADanglingLinkOnTheWayToTheRunFolderIsNamed) {
  const auto recipe = write_recipe("faults_dangling_runs", synthetic_recipe(1));
  const auto dir = recipe.parent_path();
  fs::create_directory_symlink(dir / "gone", dir / "runs");
  const auto r = run_shrink(run_args(dir / "runs" / "x", recipe));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, (dir / "runs").string() + " is a symbolic link to " + (dir / "gone").string() +
                                     ", which does not exist"))
      << r.output;
}

TEST(Faults, CompareGivenAFifoSaysWhatItIs) {
  const auto dir = scratch_dir("faults_compare_fifo");
  ASSERT_EQ(::mkfifo((dir / "report.json").c_str(), 0600), 0);
  const auto r = run_shrink("compare " + (dir / "report.json").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, (dir / "report.json").string() + ": not a regular file")) << r.output;
}

TEST(Faults, ADirectoryOrAFifoGivenAsAFileSaysWhatItIs) {
  const auto dir = scratch_dir("faults_not_files");
  fs::create_directories(dir / "model.pt");
  ASSERT_EQ(::mkfifo((dir / "model.h5").c_str(), 0600), 0);
  auto r = run_shrink("inspect " + (dir / "model.pt").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, (dir / "model.pt").string() + ": is a directory, not a file")) << r.output;
  r = run_shrink("eval " + (dir / "model.h5").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, (dir / "model.h5").string() + ": not a regular file")) << r.output;
  r = run_shrink("run " + dir.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, dir.string() + ": is a directory, not a file")) << r.output;
}

TEST(Faults, AnOutputNeverReplacesAFifoAndNamesIt) {
  const auto dir = scratch_dir("faults_output_fifo");
  const auto fifo = dir / "results.json";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    shrink::core::write_text_atomically(fifo, "{}");
    FAIL() << "wrote over a FIFO";
  } catch (const shrink::core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), fifo.string() + ": is a FIFO; shrink writes only regular files")) << e.what();
  }
  EXPECT_EQ(fs::status(fifo).type(), fs::file_type::fifo);
}

TEST(Faults, BenchJsonIntoAMissingFolderOrOntoAFifoIsAUsageErrorBeforeAnyTiming) {
  const auto recipe = write_recipe("faults_bench_json", synthetic_recipe(1));
  const auto dir = recipe.parent_path();
  ASSERT_EQ(run_shrink("run --no-progress --out " + (dir / "run").string() + " " + recipe.string()).exit_code, 0);
  auto r = run_shrink("bench --no-progress --budget 0.1 --batch 1 --json " + (dir / "nowhere" / "b.json").string() +
                      " " + (dir / "run").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "does not exist (shrink creates no folder for it)")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "nowhere"));
  ASSERT_EQ(::mkfifo((dir / "b.json").c_str(), 0600), 0);
  r = run_shrink("bench --no-progress --budget 0.1 --batch 1 --json " + (dir / "b.json").string() + " " +
                 (dir / "run").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "is a FIFO")) << r.output;
  EXPECT_EQ(fs::status(dir / "b.json").type(), fs::file_type::fifo);
}
