// Library example: layer distillation of a BERT sentence encoder in your own training loop. A
// student made of every other teacher layer (models::bert_student) learns the teacher's sentence
// embeddings and hidden states on unlabelled text; then dynamic int8; each is scored against the
// teacher on held-out sentences (train::embedding_fidelity: cosine and Spearman). With no
// arguments it runs on a tiny seeded BERT and random token ids (ctest: example.distill_bert); given
// all-MiniLM-L6-v2 and token ids from docs/python/minilm_sentences.py it distills the real model
// (docs/transformers.md gives the command and the figures).
//
// usage: example_distill_bert [MODEL.safetensors TRAIN.pth HELDOUT.pth [EPOCHS [STUDENT.safetensors]]]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "compress/quantize/quantizer.h"
#include "core/blas_kernels.h"
#include "core/threads.h"
#include "distill/kd_loss.h"
#include "io/pth_format.h"
#include "io/safetensors_format.h"
#include "io/state_dict.h"
#include "models/bert.h"
#include "train/embedding_fidelity.h"

namespace qz = shrink::compress::quantize;
using shrink::models::BertModel;

namespace {

// Batches keep only the columns some sentence reaches: padding is masked anyway, so the result is
// the same and short sentences cost what they are.
at::Tensor trim(const at::Tensor& ids) {
  const auto longest = ids.ne(0).sum(1).max().item<int64_t>();
  return ids.narrow(1, 0, std::max<int64_t>(longest, 1));
}

at::Tensor embed(const shrink::models::Model& model, const at::Tensor& ids) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> out;
  for (const auto& chunk : ids.split(64)) out.push_back(model.forward(trim(chunk)));
  return torch::cat(out);
}

void print(const char* what, const shrink::train::EmbeddingFidelity& f) {
  std::printf("%-28s cosine to the teacher: mean %.4f, 5th percentile %.4f, min %.4f; Spearman %.4f\n", what,
              f.mean_cosine, f.p5_cosine, f.min_cosine, f.spearman);
}

at::Tensor read_ids(const std::string& path) {
  for (const auto& e : shrink::io::read_pth(path))
    if (e.name == "ids") return e.tensor.to(torch::kLong);
  throw std::runtime_error(path + " holds no \"ids\" tensor (docs/python/minilm_sentences.py makes such files)");
}

// Random sentences of 4 to `length` tokens (ids 1..vocab−1), padded with 0.
at::Tensor random_ids(int64_t n, int64_t length, int64_t vocab) {
  auto ids = torch::randint(1, vocab, {n, length}, torch::kLong);
  const auto lengths = torch::randint(4, length + 1, {n, 1}, torch::kLong);
  return ids * torch::arange(length, torch::kLong).unsqueeze(0).lt(lengths);
}

// An epoch's batches of sentences of similar length: shuffled, sorted by length within pools of 64
// batches, cut, and the batches shuffled. Trimmed, they hold little padding; a random batch's
// longest sentence is often near the truncation length.
std::vector<at::Tensor> length_bucketed_batches(const at::Tensor& ids, int64_t batch, at::Generator& generator) {
  const auto order = torch::randperm(ids.size(0), generator, torch::kLong);
  const auto lengths = ids.ne(0).sum(1);
  std::vector<at::Tensor> batches;
  for (const auto& pool : order.split(64 * batch)) {
    const auto by_length = pool.index_select(0, std::get<1>(lengths.index_select(0, pool).sort()));
    for (int64_t start = 0; start + batch <= by_length.size(0); start += batch)
      batches.push_back(by_length.narrow(0, start, batch));
  }
  const auto perm = torch::randperm(static_cast<int64_t>(batches.size()), generator, torch::kLong);
  std::vector<at::Tensor> shuffled;
  for (int64_t i = 0; i < perm.size(0); ++i) shuffled.push_back(batches[perm[i].item<int64_t>()]);
  return shuffled;
}

}  // namespace

int main(int argc, char** argv) try {
  shrink::core::restart_on_better_blas_kernels(argv);  // Debian's OpenBLAS may have loaded SSE3 kernels
  torch::manual_seed(0);
  shrink::core::configure_threads(0);  // every core, as `shrink run` has it by default
  const bool tiny = argc == 1;
  BertModel teacher(tiny ? shrink::models::BertOptions().vocab_size(100).hidden(32).layers(4).heads(4).intermediate(64)
                         : shrink::models::BertOptions());
  at::Tensor train_ids, heldout_ids;
  if (tiny) {
    train_ids = random_ids(512, 16, 100);
    heldout_ids = random_ids(128, 16, 100);
  } else if (argc >= 4) {
    shrink::models::load_hf_bert(*teacher, shrink::io::read_safetensors(argv[1]), argv[1]);
    train_ids = read_ids(argv[2]);
    heldout_ids = read_ids(argv[3]);
  } else {
    std::fprintf(stderr, "usage: %s [MODEL.safetensors TRAIN.pth HELDOUT.pth [EPOCHS [STUDENT.safetensors]]]\n",
                 argv[0]);
    return 2;
  }
  const int64_t epochs = argc >= 5 ? std::stoll(argv[4]) : 4;
  teacher->eval();

  // 1. The student: the teacher's embeddings and its layers 1, 3, 5, … copied.
  std::vector<int64_t> layers;
  for (int64_t l = 1; l < teacher->options().layers(); l += 2) layers.push_back(l);
  BertModel student = shrink::models::bert_student(*teacher, layers);
  const auto reference = embed(shrink::models::to_model(teacher), heldout_ids);
  const auto before =
      shrink::train::embedding_fidelity(embed(shrink::models::to_model(student), heldout_ids), reference);
  print("student, not distilled:", before);
  std::fflush(stdout);

  // 2. Distil: 1 − cosine between the pooled embeddings, plus each student layer's token states
  //    against those of the teacher layer it was copied from (padding excluded). The hints weigh as
  //    much as the embedding: on MiniLM, weights 1 and 10 beat 0.01 and 0.1 (docs/transformers.md).
  const double base_lr = tiny ? 1e-3 : 5e-4, hint_weight = 1.0;
  shrink::distill::FeatureLoss embedding_loss(
      shrink::distill::FeatureLossOptions().distance(shrink::distill::FeatureDistance::kCosine));
  torch::optim::AdamW opt(student->parameters(), torch::optim::AdamWOptions(base_lr).weight_decay(0.01));
  const int64_t batch = 32;
  // Each pool of 64 batches drops its partial batch.
  const int64_t pool = 64 * batch, n = train_ids.size(0);
  const int64_t steps = n / pool * 64 + n % pool / batch;
  const int64_t total = epochs * steps;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
  student->train();
  for (int64_t epoch = 0, step = 0; epoch < epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const auto batches = length_bucketed_batches(train_ids, batch, generator);
    double loss_sum = 0;
    for (int64_t b = 0; b < steps; ++b, ++step) {
      const auto ids = trim(train_ids.index_select(0, batches[b]));
      const auto mask = ids.ne(0).to(torch::kFloat);
      std::vector<at::Tensor> t_states;
      at::Tensor t_emb;
      {
        torch::NoGradGuard no_grad;
        t_states = teacher->hidden_states(ids);
        t_emb = teacher->pool(t_states.back(), ids);
      }
      const auto s_states = student->hidden_states(ids);
      const auto s_emb = student->pool(s_states.back(), ids);
      auto loss = embedding_loss(s_emb, t_emb);
      for (size_t k = 0; k < layers.size(); ++k) {
        const auto d = (s_states[k + 1] - t_states[layers[k] + 1]).pow(2).mean(-1);
        loss = loss + hint_weight * (d * mask).sum() / mask.sum();
      }
      for (auto& group : opt.param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(base_lr * (1.0 - double(step) / double(total)));
      opt.zero_grad();
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>();
      if ((b + 1) % 50 == 0) {
        std::printf("  step %lld/%lld: loss %.5f\n", static_cast<long long>(b + 1), static_cast<long long>(steps),
                    loss_sum / double(b + 1));
        std::fflush(stdout);
      }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("epoch %lld/%lld: loss %.5f (%.0f s)\n", static_cast<long long>(epoch + 1),
                static_cast<long long>(epochs), loss_sum / double(steps), seconds);
    std::fflush(stdout);
  }
  student->eval();

  // 3. Score the student, then its dynamic int8, against the teacher on the held-out sentences.
  auto model = shrink::models::to_model(student);
  const auto after = shrink::train::embedding_fidelity(embed(model, heldout_ids), reference);
  print("student, distilled:", after);
  if (argc >= 6) {
    shrink::io::write_safetensors(argv[5], shrink::models::to_hf_bert(shrink::io::state_dict(*student)));
    std::printf("wrote %s (Hugging Face BERT names, %zu layers)\n", argv[5], layers.size());
  }
  qz::PostTrainingQuantizer quantizer(model, qz::QuantizeOptions().method(qz::QuantizeMethod::kDynamic));
  quantizer.prepare();
  quantizer.convert(model);
  print("student, distilled, int8:", shrink::train::embedding_fidelity(embed(model, heldout_ids), reference));
  // Distillation that does not bring the student closer to its teacher is a failure worth a red test.
  return after.mean_cosine > before.mean_cosine && after.spearman > before.spearman ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
