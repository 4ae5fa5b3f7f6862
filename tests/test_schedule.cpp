// Learning-rate schedules: warm-up, step decay and cosine values at known steps.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "train/lr_schedule.h"

using shrink::train::LrSchedule;
using shrink::train::LrScheduleOptions;

TEST(LrSchedule, ConstantStaysAtBase) {
  const LrSchedule s(LrScheduleOptions(), 0.1, 10, 5);
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(49), 0.1);
}

TEST(LrSchedule, WarmupRampsLinearlyToBase) {
  const LrSchedule s(LrScheduleOptions().warmup_epochs(1), 0.1, 10, 5);
  EXPECT_DOUBLE_EQ(s.at(0), 0.01);
  EXPECT_DOUBLE_EQ(s.at(4), 0.05);
  EXPECT_DOUBLE_EQ(s.at(9), 0.1);
  EXPECT_DOUBLE_EQ(s.at(10), 0.1);
}

TEST(LrSchedule, StepDecaysEveryStepSizeEpochs) {
  const LrSchedule s(LrScheduleOptions().name(shrink::train::LrScheduleKind::kStep).step_size(2).gamma(0.5), 0.1, 10,
                     6);
  EXPECT_DOUBLE_EQ(s.at(19), 0.1);
  EXPECT_DOUBLE_EQ(s.at(20), 0.05);
  EXPECT_DOUBLE_EQ(s.at(45), 0.025);
}

TEST(LrSchedule, CosineGoesFromBaseToMinAfterWarmup) {
  const LrSchedule s(LrScheduleOptions().name(shrink::train::LrScheduleKind::kCosine).warmup_epochs(1).min_lr(0.001),
                     0.1, 10, 5);
  EXPECT_DOUBLE_EQ(s.at(10), 0.1);
  EXPECT_NEAR(s.at(30), 0.001 + 0.099 * 0.5, 1e-12);  // halfway through the 40 post-warm-up steps
  EXPECT_NEAR(s.at(50), 0.001, 1e-12);
}

TEST(LrSchedule, AnUnknownScheduleNameIsRejectedListingTheChoices) {
  try {
    shrink::train::lr_schedule_spec().parse(YAML::Load("{name: linear}"));
    FAIL() << "no error";
  } catch (const shrink::core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "name must be one of constant, step, cosine; got 'linear'");
  }
}
