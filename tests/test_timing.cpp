// The one timing loop behind every latency shrink reports (runtime/timing.h): warm-up, candidates
// alternating, and its stopping rules.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/error.h"
#include "runtime/timing.h"

using namespace shrink;

TEST(Timing, PercentilesAreByNearestRank) {
  EXPECT_DOUBLE_EQ(runtime::percentile({5, 1, 4, 2, 3}, 50), 3);
  EXPECT_DOUBLE_EQ(runtime::percentile({5, 1, 4, 2, 3}, 90), 5);
  EXPECT_DOUBLE_EQ(runtime::percentile({5, 1, 4, 2, 3}, 0), 1);
  EXPECT_DOUBLE_EQ(runtime::median({4, 1, 3, 2}), 2);
}

TEST(Timing, WarmUpCallsComeFirstThenTheCandidatesAlternateCallByCall) {
  std::string order;
  runtime::time_interleaved({[&] { order += 'a'; }, [&] { order += 'b'; }},
                            runtime::TimingOptions().warmup(2).min_calls(3));
  EXPECT_EQ(order,
            "aabb"
            "ababab");
}

TEST(Timing, WithNothingElseAskedItStopsAtTheMinimumCalls) {
  const auto t = runtime::time_interleaved({[] {}, [] {}}, runtime::TimingOptions().warmup(0).min_calls(50));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].seconds.size(), 50u);
  EXPECT_EQ(t[1].seconds.size(), 50u);
  EXPECT_TRUE(t[0].settled);
}

TEST(Timing, MaxCallsStopsACandidateBeforeItsMinimumTime) {
  const auto t = runtime::time_interleaved(
      {[] {}}, runtime::TimingOptions().warmup(0).min_calls(5).min_seconds(3600).max_calls(20));
  EXPECT_EQ(t[0].seconds.size(), 20u);
}

TEST(Timing, AMedianThatNeverHoldsRunsUntilTheBudgetAndIsNotSettled) {
  // Every call takes twice as long as the one before: the median keeps moving. Doubling from a
  // millisecond keeps the order of the calls' times even when a loaded machine delays a call by a
  // few milliseconds (a slower early call can otherwise pin the median for two rounds).
  int calls = 0;
  const auto slower = [&] { std::this_thread::sleep_for(std::chrono::milliseconds(1 << calls++)); };
  const auto t = runtime::time_interleaved(
      {slower}, runtime::TimingOptions().warmup(0).min_calls(2).stable_within(1e-9).budget_s(0.1));
  EXPECT_FALSE(t[0].settled);
  EXPECT_GE(t[0].seconds.size(), 2u);
}

TEST(Timing, ABadSettingIsRefusedWithTheValue) {
  try {
    runtime::time_interleaved({[] {}}, runtime::TimingOptions().min_calls(0));
    FAIL() << "accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("timing min_calls must be >= 1, got 0"), std::string::npos) << e.what();
  }
}
