// Data-parallel training over c10d/Gloo: ranks as threads of this process for the library, and as
// processes of `shrink run --nproc` for the launcher.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <exception>
#include <fstream>
#include <functional>
#include <thread>

#include "core/device.h"
#include "core/error.h"
#include "dist/gradient_reducer.h"
#include "dist/launcher.h"
#include "dist/process_group.h"
#include "dist/replicas.h"
#include "helpers.h"
#include "training_fixtures.h"

using namespace shrink;
using namespace shrink::testing;

namespace {

// Runs `body` as `world` ranks, each a thread with its own group on a fresh port (its options
// changed by `adjust`); rethrows the first rank's exception, if any.
void run_ranks(int64_t world, const std::function<void(dist::ProcessGroup&)>& body, double timeout_s = 60,
               const std::function<void(dist::GroupOptions&)>& adjust = {}) {
  const int port = dist::free_local_port();
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto options = dist::GroupOptions().rank(r).world_size(world).master_port(port).timeout_s(timeout_s);
        if (adjust) adjust(options);
        auto group = std::make_shared<dist::ProcessGroup>(options);
        body(*group);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// The message of the UsageError `body` throws; "" when it throws none.
std::string usage_error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const core::UsageError& e) {
    return e.what();
  }
  return "";
}

std::map<std::string, at::Tensor> weights_of(torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

}  // namespace

TEST(ProcessGroup, SumAddsEveryRanksTensor) {
  std::vector<float> got(3);
  run_ranks(3, [&](dist::ProcessGroup& g) {
    auto t = torch::full({4}, static_cast<float>(g.rank() + 1));
    g.sum(t, "test");
    got[static_cast<size_t>(g.rank())] = t[2].item<float>();
  });
  EXPECT_EQ(got, (std::vector<float>{6, 6, 6}));
}

TEST(ProcessGroup, EnvironmentGivesRankWorldAndMaster) {
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  ::setenv("MASTER_ADDR", "10.0.0.7", 1);
  ::setenv("MASTER_PORT", "29611", 1);
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  dist::GroupOptions o;
  const bool found = dist::options_from_environment(o);
  ::setenv("RANK", "4", 1);
  const auto error = usage_error_of([] {
    dist::GroupOptions bad;
    dist::options_from_environment(bad);
  });
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_WORLD_SIZE"}) ::unsetenv(v);
  dist::GroupOptions none;
  EXPECT_FALSE(dist::options_from_environment(none));
  ASSERT_TRUE(found);
  EXPECT_EQ(o.world_size(), 4);
  EXPECT_EQ(o.rank(), 3);
  EXPECT_EQ(o.master_addr(), "10.0.0.7");
  EXPECT_EQ(o.master_port(), 29611);
  EXPECT_EQ(o.local_world_size(), 2);
  EXPECT_TRUE(contains(error, "RANK must be an integer in [0, 3], got '4'")) << error;
}

TEST(ProcessGroup, TheEnvironmentsLocalRankIsCheckedAgainstTheMachinesRanks) {
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  dist::GroupOptions o;
  dist::options_from_environment(o);
  ::setenv("LOCAL_RANK", "2", 1);
  const auto error = usage_error_of([] {
    dist::GroupOptions bad;
    dist::options_from_environment(bad);
  });
  for (const char* v : {"WORLD_SIZE", "RANK", "LOCAL_WORLD_SIZE", "LOCAL_RANK"}) ::unsetenv(v);
  EXPECT_EQ(o.local_rank(), 1);
  EXPECT_TRUE(contains(error, "LOCAL_RANK must be an integer in [0, 1], got '2'")) << error;
}

TEST(ProcessGroup, WithoutALocalRankARanksLocalRankIsItsRankModuloTheMachinesRanks) {
  std::vector<int64_t> local(4);
  // Two "machines" of two ranks each, numbered machine by machine.
  run_ranks(
      4, [&](dist::ProcessGroup& g) { local[static_cast<size_t>(g.rank())] = g.local_rank(); }, 60,
      [](dist::GroupOptions& o) { o.local_world_size(2); });
  EXPECT_EQ(local, (std::vector<int64_t>{0, 1, 0, 1}));
}

TEST(RankDevice, CudaGivesEachRankOfAMachineTheGpuOfItsLocalRank) {
  EXPECT_EQ(dist::rank_device("cuda", 0, 2, 2), c10::Device(c10::kCUDA, 0));
  EXPECT_EQ(dist::rank_device("cuda", 1, 2, 2), c10::Device(c10::kCUDA, 1));
  EXPECT_EQ(dist::rank_device("auto", 1, 2, 4), c10::Device(c10::kCUDA, 1));
}

TEST(RankDevice, CpuAndAutoWithoutAGpuStayOnTheCpu) {
  EXPECT_EQ(dist::rank_device("cpu", 1, 2, 2), c10::Device(c10::kCPU));
  EXPECT_EQ(dist::rank_device("auto", 1, 2, 0), c10::Device(c10::kCPU));
}

TEST(RankDevice, AutoWithFewerGpusThanRanksPutsEveryRankOnTheCpu) {
  EXPECT_EQ(dist::rank_device("auto", 0, 2, 1), c10::Device(c10::kCPU));
  EXPECT_EQ(dist::rank_device("auto", 1, 2, 1), c10::Device(c10::kCPU));
}

TEST(RankDevice, MoreRanksOnAMachineThanGpusIsAUsageErrorSayingSo) {
  const auto error = usage_error_of([] { dist::rank_device("cuda", 1, 2, 1); });
  EXPECT_TRUE(contains(error, "rank with LOCAL_RANK 1 has no GPU of its own: 1 CUDA device(s) visible for 2 ranks"))
      << error;
}

TEST(RankDevice, AnIndexedGpuIsKeptForAMachinesOnlyRankAndRefusedForSeveral) {
  EXPECT_EQ(dist::rank_device("cuda:1", 0, 1, 2), c10::Device(c10::kCUDA, 1));
  const auto error = usage_error_of([] { dist::rank_device("cuda:0", 0, 2, 2); });
  EXPECT_TRUE(contains(error, "device 'cuda:0' would put the 2 ranks of this machine on one GPU; write device: cuda"))
      << error;
}

// Ranks as threads, each with its own GPU: NCCL's communicators, one a device. Runs on a machine
// with two GPUs and a LibTorch with NCCL (scripts/gpu-check.sh's), skipped elsewhere.
TEST(ProcessGroup, CudaTensorsAreSummedOverNcclWithAGpuEachRank) {
  if (!dist::nccl_built()) GTEST_SKIP() << "this LibTorch has no NCCL";
  if (core::cuda_device_count() < 2) GTEST_SKIP() << "needs two GPUs";
  std::vector<float> got(2);
  std::vector<std::string> devices(2);
  run_ranks(2, [&](dist::ProcessGroup& g) {
    const auto device = dist::rank_device("cuda", g.local_rank(), 2, core::cuda_device_count());
    auto t = torch::full({1000}, static_cast<float>(g.rank() + 1), torch::TensorOptions().device(device));
    g.sum(t, "test");
    g.broadcast(t, 1, "test");
    got[static_cast<size_t>(g.rank())] = t[999].item<float>();
    devices[static_cast<size_t>(g.rank())] = t.device().str();
  });
  EXPECT_EQ(got, (std::vector<float>{3, 3}));
  EXPECT_EQ(devices, (std::vector<std::string>{"cuda:0", "cuda:1"}));
}

// 193 samples in batches of 32: the last batch has one sample, so rank 0's part of it is empty.
TEST(DataParallel, TwoRanksTrainTheWeightsOneProcessTrainsOnTheWholeBatches) {
  const auto data = tiny_data(193);
  auto alone = tiny_mlp(11);
  train::Trainer(alone, small_training(2)).fit(data);
  const auto expected = weights_of(*alone);

  std::vector<std::map<std::string, at::Tensor>> ranks(2);
  // Built here, not in the ranks' threads, which would share the global generator. Rank 1 starts
  // from other weights: training begins from rank 0's.
  std::vector<models::Classifier> models{tiny_mlp(11), tiny_mlp(12)};
  run_ranks(2, [&](dist::ProcessGroup& g) {
    auto model = models[static_cast<size_t>(g.rank())];
    auto group = std::shared_ptr<dist::ProcessGroup>(&g, [](dist::ProcessGroup*) {});
    train::Trainer(model, small_training(2).group(group)).fit(data);
    ranks[static_cast<size_t>(g.rank())] = weights_of(*model);
  });
  for (const auto& [name, w] : expected) {
    EXPECT_TRUE(torch::equal(ranks[0].at(name), ranks[1].at(name))) << name;
    EXPECT_TRUE(torch::allclose(ranks[0].at(name), w, 1e-4, 1e-5))
        << name << ": max difference " << (ranks[0].at(name) - w).abs().max().item<float>();
  }
}

TEST(DataParallel, EpochFiguresAreTheGroups) {
  const auto data = tiny_data(192);
  auto alone = tiny_mlp(11);
  const auto one = train::Trainer(alone, small_training(1)).fit(data);
  std::vector<train::FitResult> results(2);
  std::vector<models::Classifier> models{tiny_mlp(11), tiny_mlp(11)};
  run_ranks(2, [&](dist::ProcessGroup& g) {
    auto model = models[static_cast<size_t>(g.rank())];
    auto group = std::shared_ptr<dist::ProcessGroup>(&g, [](dist::ProcessGroup*) {});
    results[static_cast<size_t>(g.rank())] = train::Trainer(model, small_training(1).group(group)).fit(data);
  });
  for (const auto& r : results) {
    EXPECT_NEAR(r.epochs[0].train_loss, one.epochs[0].train_loss, 1e-5);
    EXPECT_NEAR(r.epochs[0].train_accuracy, one.epochs[0].train_accuracy, 1e-9);
  }
}

TEST(DataParallel, BatchNormStatisticsFollowRankZero) {
  const auto data = tiny_data(128);
  std::vector<at::Tensor> means(2);
  std::vector<models::Classifier> models;
  for (int r = 0; r < 2; ++r) {
    torch::manual_seed(3 + r);
    models.push_back(models::build_model(models::ConvNetOptions().channels({4}).batch_norm(true), {{1, 8, 8}, 4}));
  }
  run_ranks(2, [&](dist::ProcessGroup& g) {
    auto model = models[static_cast<size_t>(g.rank())];
    auto group = std::shared_ptr<dist::ProcessGroup>(&g, [](dist::ProcessGroup*) {});
    // fit() checks at each epoch's end that the replicas agree tensor for tensor.
    train::Trainer(model, small_training(1).group(group)).fit(data);
    for (const auto& b : model->named_buffers()) {
      if (b.key().find("running_mean") != std::string::npos) means[static_cast<size_t>(g.rank())] = b.value().clone();
    }
  });
  ASSERT_TRUE(means[0].defined());
  EXPECT_TRUE(torch::equal(means[0], means[1]));
  EXPECT_GT(means[0].abs().sum().item<float>(), 0.0f);
}

TEST(DataParallel, BroadcastGivesEveryRankRankZerosTensorsOfEveryDtype) {
  std::vector<std::vector<at::Tensor>> got(2);
  run_ranks(2, [&](dist::ProcessGroup& g) {
    const float base = g.rank() == 0 ? 1.0f : 5.0f;
    // Odd sizes, so the int64 tensor starts at a byte offset no multiple of 8.
    dist::NamedTensors tensors{{"a", torch::full({3}, base)},
                               {"b", torch::full({2}, static_cast<int64_t>(base) * 10, torch::kLong)},
                               {"c", torch::full({5}, g.rank() == 0, torch::kBool)},
                               {"d", torch::full({2, 2}, base, torch::kDouble)}};
    dist::broadcast_from_rank0(g, tensors, "in a test");
    for (const auto& t : tensors) got[static_cast<size_t>(g.rank())].push_back(t.second);
  });
  for (size_t i = 0; i < got[0].size(); ++i) EXPECT_TRUE(torch::equal(got[0][i], got[1][i])) << i;
  EXPECT_EQ(got[1][1][0].item<int64_t>(), 10);
  EXPECT_TRUE(got[1][2].all().item<bool>());
}

TEST(DataParallel, DivergedReplicasNameTheTensorAndTheRank) {
  std::string error;
  std::vector<models::Classifier> models{tiny_mlp(11), tiny_mlp(11), tiny_mlp(11)};
  run_ranks(3, [&](dist::ProcessGroup& g) {
    auto model = models[static_cast<size_t>(g.rank())];
    model.ptr()->register_buffer("weight_mask", torch::ones({4}));
    if (g.rank() == 2) model.ptr()->named_buffers()["weight_mask"].index_put_({1}, 0.0f);
    try {
      dist::check_replicas(g, dist::replica_tensors(*model.ptr()), "after pruning");
    } catch (const core::Error& e) {
      if (g.rank() == 0) error = e.what();
    }
  });
  EXPECT_TRUE(contains(error, "replicas diverged after pruning: 'weight_mask' on rank(s) 2 differs from rank 0's"))
      << error;
}

TEST(DataParallel, OneBucketAfterBackwardSumsTheSameGradients) {
  // bucket_mb 0 sends everything after backward: the sum is the same, only later.
  std::vector<at::Tensor> grads(2);
  const int port = dist::free_local_port();
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto group = std::make_shared<dist::ProcessGroup>(
          dist::GroupOptions().rank(r).world_size(2).master_port(port).bucket_mb(0));
      auto w = torch::ones({3}, torch::requires_grad());
      dist::GradientReducer reducer(group, {{"w", w}});
      reducer.start_step(0.5);
      (w * static_cast<float>(r + 1)).sum().backward();
      reducer.finish_step();
      EXPECT_EQ(reducer.stats().buckets, 1);
      EXPECT_EQ(reducer.stats().sent_during_backward, 0);
      grads[static_cast<size_t>(r)] = w.grad().clone();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(torch::allclose(grads[0], torch::full({3}, 1.5f)));
  EXPECT_TRUE(torch::equal(grads[0], grads[1]));
}

TEST(DataParallel, ACollectiveFailsNamingItsRankWhenAnotherRankIsGone) {
  std::string error;
  run_ranks(2, [&](dist::ProcessGroup& g) {
    // One sum both take part in first: rank 1 leaves only once rank 0 has met it (on a loaded
    // machine rank 0 was still meeting, and failed there, when rank 1 had already gone).
    g.sum(torch::ones({1}), "a first all-reduce");
    if (g.rank() == 1) return;  // leaves: its group closes its connections
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    try {
      g.sum(torch::ones({2}), "all-reduce of gradient bucket 0");
    } catch (const core::Error& e) {
      error = e.what();
    }
  });
  EXPECT_TRUE(contains(error, "rank 0: all-reduce of gradient bucket 0 failed")) << error;
}

namespace {

struct Started {
  pid_t pid;
  std::filesystem::path log;
};

// `shrink ARGS` in the background with the variables `env` ("A=1 B=2"), its output in a file.
Started start_logged(const std::string& args, const std::filesystem::path& log, const std::string& env = "") {
  const std::string command = env + " exec " + shrink_binary() + " " + args + " >" + log.string() + " 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return {pid, log};
}

// Runs `recipe_text` once in one process and once with --nproc 2; their folders are DIR/one and DIR/two.
struct OneAndTwo {
  std::filesystem::path dir;
  nlohmann::json one, two;  // the runs' report.json
  std::string two_output;
};
OneAndTwo run_with_one_and_two_processes(const std::string& name, const std::string& recipe_text) {
  const auto recipe = write_recipe(name, recipe_text);
  OneAndTwo r{recipe.parent_path(), {}, {}, {}};
  const auto one = run_shrink("run " + recipe.string() + " --out " + (r.dir / "one").string() + " --no-progress");
  EXPECT_EQ(one.exit_code, 0) << one.output;
  const auto two =
      run_shrink("run " + recipe.string() + " --out " + (r.dir / "two").string() + " --no-progress --nproc 2");
  EXPECT_EQ(two.exit_code, 0) << two.output;
  r.two_output = two.output;
  if (one.exit_code == 0 && two.exit_code == 0) {
    r.one = read_json(r.dir / "one" / "report.json");
    r.two = read_json(r.dir / "two" / "report.json");
  }
  return r;
}

}  // namespace

TEST(DataParallelCli, NprocTwoGivesOneRunWithTheFiguresOfOneProcess) {
  const auto r = run_with_one_and_two_processes("dp_cli", synthetic_recipe(3));
  ASSERT_FALSE(r.two.is_null());
  EXPECT_TRUE(contains(r.two_output, "2 ranks (data-parallel)")) << r.two_output;
  const auto& a = r.one;
  const auto& b = r.two;
  const auto& dir = r.dir;
  const auto& ea = a["stages"][0]["training"]["epochs"];
  const auto& eb = b["stages"][0]["training"]["epochs"];
  ASSERT_EQ(ea.size(), eb.size());
  for (size_t e = 0; e < ea.size(); ++e)
    EXPECT_NEAR(eb[e]["train_loss"].get<double>(), ea[e]["train_loss"].get<double>(), 1e-4) << "epoch " << e;
  EXPECT_NEAR(b["stages"][0]["metrics"]["accuracy"].get<double>(), a["stages"][0]["metrics"]["accuracy"].get<double>(),
              0.01);
  // Rank 0 alone wrote: the same files as one process's run.
  std::set<std::string> files_one, files_two;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir / "one"))
    files_one.insert(std::filesystem::relative(e.path(), dir / "one").string());
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir / "two"))
    files_two.insert(std::filesystem::relative(e.path(), dir / "two").string());
  EXPECT_EQ(files_one, files_two);
}

TEST(DataParallelCli, PruningUnderNprocGivesTheSameSparsity) {
  const std::string prune =
      "  - prune:\n"
      "      model: small\n"
      "      method: l1\n"
      "      sparsity: 0.6\n"
      "      schedule: {kind: agp, start_epoch: 0, end_epoch: 1, frequency: 2}\n"
      "      finetune:\n"
      "        epochs: 2\n"
      "        batch_size: 32\n"
      "        optimizer: {name: sgd, lr: 0.02, momentum: 0.9}\n";
  const auto r = run_with_one_and_two_processes("dp_prune", synthetic_recipe(2, prune));
  ASSERT_FALSE(r.two.is_null());
  const auto& a = r.one;
  const auto& b = r.two;
  EXPECT_DOUBLE_EQ(b["stages"][1]["metrics"]["sparsity"].get<double>(),
                   a["stages"][1]["metrics"]["sparsity"].get<double>());
  EXPECT_GT(b["stages"][1]["metrics"]["sparsity"].get<double>(), 0.5);
}

TEST(DataParallelCli, DistillationAndQatModifiersTrainUnderNproc) {
  std::string text = synthetic_recipe(2,
                                      "  - train:\n"
                                      "      model: student\n"
                                      "      epochs: 2\n"
                                      "      batch_size: 32\n"
                                      "      optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n"
                                      "      modifiers:\n"
                                      "        - distill: {teacher: small, temperature: 4, alpha: 0.7}\n"
                                      "  - train:\n"
                                      "      model: student\n"
                                      "      epochs: 2\n"
                                      "      batch_size: 32\n"
                                      "      optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n"
                                      "      modifiers:\n"
                                      "        - qat: {freeze_observers_epoch: 1}\n");
  text.replace(text.find("stages:"), 7, "  student:\n    arch: mlp\n    hidden: [16]\nstages:");
  const auto r = run_with_one_and_two_processes("dp_modifiers", text);
  ASSERT_FALSE(r.two.is_null());
  const auto& a = r.one;
  const auto& b = r.two;
  ASSERT_EQ(b["stages"].size(), 3u);
  EXPECT_GT(b["stages"][1]["modifiers"][0]["distilled_steps"].get<int64_t>(), 0);
  EXPECT_EQ(b["stages"][2]["quantization"]["int8_layers"].size(), 2u);
  // Batch-norm-free models, so the group trains what one process trains up to the order of sums;
  // the int8 stage's observers follow rank 0's part of each batch.
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(b["stages"][i]["metrics"]["accuracy"].get<double>(),
                a["stages"][i]["metrics"]["accuracy"].get<double>(), 0.03)
        << "stage " << i;
  }
}

TEST(DataParallelCli, AKilledRankStopsTheOthersWithinSecondsAndIsNamed) {
  const auto recipe = write_recipe("dp_kill", synthetic_recipe(100000));
  const auto dir = recipe.parent_path();
  const auto run =
      start_logged("run " + recipe.string() + " --out " + (dir / "out").string() + " --nproc 2", dir / "log.txt");
  // The launcher names its ranks' pids; training starts soon after.
  pid_t victim = -1;
  for (int i = 0; i < 600 && victim < 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto log = read_file(run.log);
    const auto at = log.find("(pids ");
    if (at != std::string::npos && log.find("2 ranks (data-parallel)") != std::string::npos)
      victim = std::stoi(log.substr(log.find(", ", at) + 2));
  }
  ASSERT_GT(victim, 0) << read_file(run.log);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto killed = std::chrono::steady_clock::now();
  ::kill(victim, SIGKILL);
  int status = 0;
  bool exited = false;
  while (!exited && std::chrono::steady_clock::now() - killed < std::chrono::seconds(60)) {
    exited = ::waitpid(run.pid, &status, WNOHANG) == run.pid;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!exited) ::kill(run.pid, SIGKILL);
  ASSERT_TRUE(exited) << read_file(run.log);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  const auto log = read_file(run.log);
  EXPECT_EQ(WEXITSTATUS(status), 1) << log;
  EXPECT_TRUE(contains(log, "rank 1 (pid " + std::to_string(victim) + ") was killed by signal 9")) << log;
  EXPECT_LT(seconds, 10.0) << log;
  // No rank outlives the launcher.
  EXPECT_NE(::kill(victim, 0), 0);
}

TEST(DataParallelCli, AKilledRunResumesUnderNprocToTheUninterruptedRunsFigures) {
  const auto recipe =
      write_recipe("dp_resume", synthetic_recipe(2,
                                                 "  - train:\n"
                                                 "      model: small\n"
                                                 "      epochs: 120\n"
                                                 "      batch_size: 32\n"
                                                 "      optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n"));
  const auto dir = recipe.parent_path();
  const auto full =
      run_shrink("run " + recipe.string() + " --out " + (dir / "full").string() + " --no-progress --nproc 2");
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const auto cut = dir / "cut";
  const auto run =
      start_logged("run " + recipe.string() + " --out " + cut.string() + " --no-progress --nproc 2", dir / "log.txt");
  // Killed (launcher first, its ranks after it) once the second stage has a checkpoint.
  const auto checkpoint = cut / "work" / "stage-1-train" / "checkpoint.pt";
  for (int i = 0; i < 1200 && !std::filesystem::exists(checkpoint); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(run.pid, SIGKILL);
  ::waitpid(run.pid, nullptr, 0);
  ASSERT_TRUE(std::filesystem::exists(checkpoint)) << read_file(run.log);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the ranks die with their launcher
  const auto resumed =
      run_shrink("run " + recipe.string() + " --out " + cut.string() + " --no-progress --nproc 2 --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "resumed from")) << resumed.output;
  const auto a = read_json(dir / "full" / "report.json")["stages"][1];
  const auto b = read_json(cut / "report.json")["stages"][1];
  EXPECT_TRUE(b["training"]["resumed"].get<bool>());
  EXPECT_EQ(a["training"]["epochs"].back()["train_loss"], b["training"]["epochs"].back()["train_loss"]);
  EXPECT_EQ(a["metrics"]["loss"], b["metrics"]["loss"]);
}

TEST(DataParallelCli, ProcessesStartedWithTheTorchrunVariablesJoinOneRun) {
  const auto recipe = write_recipe("dp_torchrun_join", synthetic_recipe(2));
  const auto dir = recipe.parent_path();
  const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(dist::free_local_port());
  const std::string args = "run " + recipe.string() + " --out " + (dir / "out").string();
  const auto rank1 = start_logged(args, dir / "rank1.txt", "RANK=1 " + env);
  const auto r0 = run_command("RANK=0 " + env + " " + shrink_binary() + " " + args);
  int status = 0;
  ::waitpid(rank1.pid, &status, 0);
  ASSERT_EQ(r0.exit_code, 0) << r0.output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_file(dir / "rank1.txt");
  EXPECT_TRUE(contains(r0.output, "2 ranks (data-parallel)")) << r0.output;
  EXPECT_EQ(read_json(dir / "out" / "report.json")["stages"].size(), 1u);
}

TEST(DataParallelCli, NprocInsideATorchrunJobIsAUsageError) {
  const auto recipe = write_recipe("dp_torchrun", synthetic_recipe(1));
  const auto r = run_command("WORLD_SIZE=2 RANK=0 " + shrink_binary() + " run " + recipe.string() + " --out " +
                             (recipe.parent_path() / "out").string() + " --nproc 2");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "--nproc starts its own ranks; this process already has WORLD_SIZE")) << r.output;
}

TEST(DataParallelCli, ABadRankVariableIsAUsageErrorNamingIt) {
  const auto recipe = write_recipe("dp_badrank", synthetic_recipe(1));
  const auto r = run_command("WORLD_SIZE=2 RANK=two " + shrink_binary() + " run " + recipe.string() + " --out " +
                             (recipe.parent_path() / "out").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "RANK must be an integer in [0, 1], got 'two'")) << r.output;
}

TEST(DataParallelCli, ALocalRankOutsideTheMachinesRanksIsAUsageErrorNamingIt) {
  const auto recipe = write_recipe("dp_badlocal", synthetic_recipe(1));
  const auto r = run_command("WORLD_SIZE=2 RANK=1 LOCAL_RANK=2 " + shrink_binary() + " run " + recipe.string() +
                             " --out " + (recipe.parent_path() / "out").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "LOCAL_RANK must be an integer in [0, 1], got '2'")) << r.output;
}

TEST(DataParallelCli, NprocOnCudaWithMoreRanksThanGpusIsAUsageErrorBeforeAnyRankStarts) {
  const int64_t gpus = core::cuda_device_count();
  if (gpus == 0) GTEST_SKIP() << "no GPU";
  const auto recipe = write_recipe("dp_gpus", synthetic_recipe(1));
  const auto r = run_shrink("run " + recipe.string() + " --out " + (recipe.parent_path() / "out").string() +
                            " --no-progress --set device=cuda --nproc " + std::to_string(gpus + 1));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "has no GPU of its own")) << r.output;
  EXPECT_FALSE(contains(r.output, "[rank")) << r.output;
}

TEST(DataParallelCli, NprocTwoOnCudaTrainsEachRankOnItsOwnGpuOverNccl) {
  if (!dist::nccl_built()) GTEST_SKIP() << "this LibTorch has no NCCL";
  if (core::cuda_device_count() < 2) GTEST_SKIP() << "needs two GPUs";
  const auto recipe = write_recipe("dp_nccl", synthetic_recipe(2));
  const auto dir = recipe.parent_path();
  const auto one =
      run_shrink("run " + recipe.string() + " --out " + (dir / "one").string() + " --no-progress --set device=cuda");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = run_shrink("run " + recipe.string() + " --out " + (dir / "two").string() +
                              " --no-progress --set device=cuda --nproc 2");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto a = read_json(dir / "one" / "report.json");
  const auto b = read_json(dir / "two" / "report.json");
  EXPECT_EQ(b["environment"]["device"], "cuda:0");
  EXPECT_NEAR(b["stages"][0]["training"]["epochs"].back()["train_loss"].get<double>(),
              a["stages"][0]["training"]["epochs"].back()["train_loss"].get<double>(), 1e-3);
}
