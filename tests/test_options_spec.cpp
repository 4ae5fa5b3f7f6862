// One definition per option: schema defaults are the options structs' own, emit and parse are
// inverses, and the docs' key table is the schema's.
#include <gtest/gtest.h>

#include "helpers.h"
#include "recipe/option_specs.h"
#include "recipe/recipe.h"

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
  expect_defaults_agree(recipe::optimizer_spec(), train::OptimizerOptions(), "optimizer");
  expect_defaults_agree(recipe::optimizer_spec(), train::OptimizerOptions().name("adamw"), "optimizer (adamw)");
  expect_defaults_agree(recipe::lr_schedule_spec(), train::LrScheduleOptions().name("cosine"), "schedule");
  expect_defaults_agree(recipe::training_spec(), train::TrainerOptions(), "training");
  expect_defaults_agree(recipe::prune_spec(), compress::prune::PruneOptions(), "prune");
  expect_defaults_agree(recipe::synthetic_spec(), data::SyntheticOptions(), "synthetic");
  expect_defaults_agree(recipe::latency_spec(), report::LatencyOptions(), "report");
}

TEST(OptionsSpec, EmittedOptionsParseBackToTheSameOptions) {
  const auto o = train::TrainerOptions()
                     .epochs(7)
                     .batch_size(33)
                     .optimizer(train::OptimizerOptions().name("adam").lr(3e-4).beta2(0.98))
                     .schedule(train::LrScheduleOptions().name("step").step_size(2).gamma(0.5))
                     .label_smoothing(0.05)
                     .grad_clip(1.5);
  const auto& spec = recipe::training_spec();
  const auto back = spec.parse(spec.emit(o));
  EXPECT_EQ(back.epochs(), 7);
  EXPECT_EQ(back.optimizer().name(), "adam");
  EXPECT_DOUBLE_EQ(back.optimizer().lr(), 3e-4);
  EXPECT_DOUBLE_EQ(back.optimizer().beta2(), 0.98);
  EXPECT_EQ(back.schedule().step_size(), 2);
  EXPECT_DOUBLE_EQ(back.grad_clip(), 1.5);
  EXPECT_EQ(text(spec.emit(back)), text(spec.emit(o)));
}

TEST(OptionsSpec, OnlyTheChosenVariantsKeysAreEmitted) {
  const auto sgd = recipe::optimizer_spec().emit(train::OptimizerOptions());
  EXPECT_TRUE(sgd["momentum"]);
  EXPECT_FALSE(sgd["beta1"]);
  const auto adam = recipe::optimizer_spec().emit(train::OptimizerOptions().name("adam"));
  EXPECT_FALSE(adam["momentum"]);
  EXPECT_TRUE(adam["beta1"]);
}

TEST(OptionsSpec, NumbersAreWrittenInTheirShortestExactForm) {
  EXPECT_EQ(recipe::optimizer_spec().emit(train::OptimizerOptions().lr(0.1).momentum(0.9))["momentum"].Scalar(), "0.9");
  EXPECT_EQ(config::shortest_number(1.0 / 3.0).as<double>(), 1.0 / 3.0);
}

TEST(Docs, RecipeKeyReferenceIsTheSchemas) {
  const std::string doc = read_file(tests_dir() + "/../docs/recipes.md");
  const std::string begin = "<!-- keys:begin (generated: shrink validate --keys) -->\n", end = "<!-- keys:end -->";
  const auto a = doc.find(begin), b = doc.find(end);
  ASSERT_NE(a, std::string::npos) << "docs/recipes.md lacks the key reference markers";
  ASSERT_NE(b, std::string::npos);
  const std::string table = doc.substr(a + begin.size(), b - a - begin.size());
  EXPECT_EQ(table, config::key_reference_markdown(config::key_reference(*recipe::recipe_schema())))
      << "regenerate it with: build/shrink validate --keys";
}
