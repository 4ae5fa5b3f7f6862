// One definition per option: schema defaults are the options structs' own, emit and parse are
// inverses, and the docs' key table is the schema's.
#include <gtest/gtest.h>

#include "compress/prune/l1_pruner.h"
#include "compress/quantize/qat.h"
#include "compress/quantize/quantizer.h"
#include "core/error.h"
#include "data/synthetic.h"
#include "distill/distill_modifier.h"
#include "helpers.h"
#include "report/measure.h"
#include "train/trainer.h"

using namespace shrink;
using namespace shrink::testing;

namespace {

std::string text(const YAML::Node& n) {
  YAML::Emitter out;
  out << n;
  return out.c_str();
}

// The schema's defaults, filled into an empty map and parsed, give the struct's defaults.
template <class T>
void expect_defaults_agree(const config::OptionsSpec<T>& spec, const T& defaults, const char* what) {
  YAML::Node empty(YAML::NodeType::Map);
  auto schema = spec.schema(defaults);
  // Keys the recipe must give have no default: supply the struct's value.
  for (const auto& f : schema->fields) {
    if (f.required) empty[f.key] = spec.emit(defaults)[f.key];
  }
  config::fill_defaults(empty, *schema);
  EXPECT_EQ(text(spec.emit(spec.parse(empty))), text(spec.emit(defaults))) << what;
}

}  // namespace

TEST(OptionsSpec, SchemaDefaultsAreTheOptionsStructsDefaults) {
  namespace q = compress::quantize;
  expect_defaults_agree(train::optimizer_spec(), train::OptimizerOptions(), "optimizer");
  expect_defaults_agree(train::optimizer_spec(), train::OptimizerOptions().name(train::OptimizerKind::kAdamW),
                        "optimizer (adamw)");
  expect_defaults_agree(train::lr_schedule_spec(), train::LrScheduleOptions().name(train::LrScheduleKind::kCosine),
                        "schedule");
  expect_defaults_agree(train::training_spec(), train::TrainerOptions(), "training");
  expect_defaults_agree(data::augment_spec(), data::AugmentOptions(), "augment");
  expect_defaults_agree(compress::prune::prune_spec(), compress::prune::PruneOptions(), "prune");
  expect_defaults_agree(q::quantize_spec(), q::QuantizeOptions(), "quantize");
  expect_defaults_agree(q::qat_spec(), q::QatOptions(), "qat");
  expect_defaults_agree(q::observer_spec(), q::ObserverOptions(), "observer");
  expect_defaults_agree(distill::distill_options_spec(), distill::DistillOptions(), "distill");
  expect_defaults_agree(distill::feature_pair_spec(), distill::FeaturePair("a", "b"), "feature pair");
  expect_defaults_agree(data::synthetic_spec(), data::SyntheticOptions(), "synthetic");
  expect_defaults_agree(report::latency_spec(), report::LatencyOptions(), "report");
}

TEST(OptionsSpec, TheLibraryRefusesWhatTheRecipeSchemaRefusesWithTheSameWords) {
  const auto prune = compress::prune::PruneOptions().sparsity(1.5);
  try {
    compress::prune::validate(prune);
    FAIL() << "no error";
  } catch (const core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "prune: sparsity: expected a number in [0, 1), got 1.5");
  }
  try {
    train::validate(train::OptimizerOptions().lr(-1));
    FAIL() << "no error";
  } catch (const core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "optimizer: lr: expected a number > 0, got -1");
  }
}

TEST(OptionsSpec, EnumOptionsReadAndWriteTheNamesTheirEnumDeclares) {
  const auto& spec = compress::prune::prune_spec();
  const auto o = spec.parse(YAML::Load("{sparsity: 0.5, scope: global, schedule: {kind: agp, end_epoch: 2}}"));
  EXPECT_EQ(o.scope(), compress::prune::PruneScope::kGlobal);
  EXPECT_EQ(o.schedule().kind(), compress::prune::PruneScheduleKind::kAgp);
  EXPECT_EQ(spec.emit(o)["scope"].Scalar(), "global");
  EXPECT_EQ(config::one_of<compress::prune::PruneScope>()->choices, (std::vector<std::string>{"layer", "global"}));
}

TEST(OptionsSpec, FingerprintTextChangesWithEveryKey) {
  const auto& spec = train::training_spec();
  const auto base = train::TrainerOptions();
  EXPECT_NE(spec.text(base), spec.text(train::TrainerOptions(base).label_smoothing(0.1)));
  EXPECT_NE(spec.text(base), spec.text(train::TrainerOptions(base).augment(data::AugmentOptions().hflip(true))));
  EXPECT_EQ(spec.text(base), spec.text(train::TrainerOptions(base).progress(false)));  // not a recipe key
}

TEST(OptionsSpec, EmittedOptionsParseBackToTheSameOptions) {
  const auto o = train::TrainerOptions()
                     .epochs(7)
                     .batch_size(33)
                     .optimizer(train::OptimizerOptions().name(train::OptimizerKind::kAdam).lr(3e-4).beta2(0.98))
                     .schedule(train::LrScheduleOptions().name(train::LrScheduleKind::kStep).step_size(2).gamma(0.5))
                     .label_smoothing(0.05)
                     .grad_clip(1.5);
  const auto& spec = train::training_spec();
  const auto back = spec.parse(spec.emit(o));
  EXPECT_EQ(back.epochs(), 7);
  EXPECT_EQ(back.optimizer().name(), train::OptimizerKind::kAdam);
  EXPECT_DOUBLE_EQ(back.optimizer().lr(), 3e-4);
  EXPECT_DOUBLE_EQ(back.optimizer().beta2(), 0.98);
  EXPECT_EQ(back.schedule().step_size(), 2);
  EXPECT_DOUBLE_EQ(back.grad_clip(), 1.5);
  EXPECT_EQ(text(spec.emit(back)), text(spec.emit(o)));
}

TEST(OptionsSpec, OnlyTheChosenVariantsKeysAreEmitted) {
  const auto sgd = train::optimizer_spec().emit(train::OptimizerOptions());
  EXPECT_TRUE(sgd["momentum"]);
  EXPECT_FALSE(sgd["beta1"]);
  const auto adam = train::optimizer_spec().emit(train::OptimizerOptions().name(train::OptimizerKind::kAdam));
  EXPECT_FALSE(adam["momentum"]);
  EXPECT_TRUE(adam["beta1"]);
}

TEST(OptionsSpec, NumbersAreWrittenInTheirShortestExactForm) {
  EXPECT_EQ(train::optimizer_spec().emit(train::OptimizerOptions().lr(0.1).momentum(0.9))["momentum"].Scalar(), "0.9");
  EXPECT_EQ(config::shortest_number(1.0 / 3.0).as<double>(), 1.0 / 3.0);
}

TEST(Docs, RecipeKeyReferenceIsTheSchemas) {
  const std::string doc = read_file(tests_dir() + "/../docs/recipes.md");
  const std::string begin = "<!-- keys:begin (generated: shrink validate --keys) -->\n", end = "<!-- keys:end -->";
  const auto a = doc.find(begin), b = doc.find(end);
  ASSERT_NE(a, std::string::npos) << "docs/recipes.md lacks the key reference markers";
  ASSERT_NE(b, std::string::npos);
  const std::string table = doc.substr(a + begin.size(), b - a - begin.size());
  // The command's own output, not this process's registries: tests register architectures and
  // kinds of their own, and the reference must not depend on which ran first.
  const auto keys = run_shrink("validate --keys 2>/dev/null");
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
  EXPECT_EQ(table, keys.output) << "regenerate it with: build/shrink validate --keys";
}
