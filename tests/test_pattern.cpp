// User patterns on RE2 (core/pattern.h): std::regex_search's matching rule, no crash or
// exponential time on any pattern, refusals that name the key.
#include <gtest/gtest.h>

#include <string>

#include "compress/prune/l1_pruner.h"
#include "core/error.h"
#include "core/pattern.h"
#include "helpers.h"

using namespace shrink;
using namespace shrink::testing;

TEST(Pattern, SearchesAnywhereInTheTextAsRegexSearchDoes) {
  const core::Pattern weights("weight$", "include");
  EXPECT_TRUE(weights.search("classifier.0.weight"));
  EXPECT_FALSE(weights.search("classifier.0.weight_mask"));
  EXPECT_TRUE(core::Pattern("classifier\\.4", "exclude").search("model.classifier.4.bias"));
  EXPECT_FALSE(core::Pattern("^classifier", "exclude").search("model.classifier.4.bias"));
}

// std::regex recursed once a level and ended shrink with SIGSEGV here.
TEST(Pattern, NestedTwentyThousandDeepMatchesWithoutACrash) {
  const std::string deep = std::string(20000, '(') + "a" + std::string(20000, ')');
  const core::Pattern p(deep, "prune: include");
  EXPECT_TRUE(p.search("conv.a"));
  EXPECT_FALSE(p.search("conv.1"));
}

TEST(Pattern, AnInvalidLongPatternIsRefusedWithItsStartAndLength) {
  const std::string unclosed = std::string(20000, '(') + "a";
  try {
    core::Pattern(unclosed, "prune: include");
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "prune: include: '((((")) << e.what();
    EXPECT_TRUE(contains(e.what(), "(20001 characters)' is not a valid pattern (RE2 syntax): missing )")) << e.what();
  }
}

// std::regex backtracks through every split of the a's: 2^40 paths before it says no.
TEST(Pattern, NestedStarsMatchInLinearTime) {
  const core::Pattern p("(a*)*b", "exclude");
  EXPECT_FALSE(p.search(std::string(40, 'a')));
  EXPECT_TRUE(p.search(std::string(40, 'a') + "b"));
}

TEST(Pattern, ABackreferenceIsRefusedWithRe2sReason) {
  try {
    core::Pattern("(a)\\1", "exclude");
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "exclude: '(a)\\1' is not a valid pattern (RE2 syntax): invalid escape sequence"))
        << e.what();
  }
}

TEST(Pattern, APrunerPatternRe2RejectsFailsValidationNamingTheKey) {
  try {
    compress::prune::validate(compress::prune::PruneOptions().sparsity(0.5).exclude({"classifier(\\.4"}));
    FAIL() << "accepted";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "prune: exclude: 'classifier(\\.4' is not a valid pattern")) << e.what();
  }
}

TEST(Pattern, LongValuesAreCutInMessagesWithTheirLength) {
  EXPECT_EQ(core::cut_for_message("short"), "short");
  EXPECT_EQ(core::cut_for_message(std::string(200, 'x'), 10), "xxxxxxxxxx... (200 characters)");
}
