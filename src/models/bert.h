// A BERT encoder laid out as Hugging Face's (embeddings.*, encoder.layer.N.*), so a pretrained
// checkpoint (all-MiniLM-L6-v2's model.safetensors) loads through one documented name map: token
// ids in, mean-pooled (optionally L2-normalised) sentence embeddings out, as sentence-transformers
// computes them, or with `classes`, one logit per class from a Linear head over that embedding.
// Every Linear sits in a LayerStack of its own (`query.0`, `intermediate.dense.0`), so the
// library's quantizers, pruners and feature taps reach it as they reach the zoo's layers.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <string>
#include <vector>

#include "io/state_dict.h"
#include "models/layer_stack.h"

namespace shrink::models {

// Defaults: all-MiniLM-L6-v2 (BERT-base is hidden 768, 12 layers, 12 heads, intermediate 3072).
struct BertOptions {
  TORCH_ARG(int64_t, vocab_size) = 30522;
  TORCH_ARG(int64_t, hidden) = 384;
  TORCH_ARG(int64_t, layers) = 6;
  TORCH_ARG(int64_t, heads) = 12;
  TORCH_ARG(int64_t, intermediate) = 1536;
  TORCH_ARG(int64_t, max_positions) = 512;
  TORCH_ARG(int64_t, type_vocab_size) = 2;
  TORCH_ARG(double, layer_norm_eps) = 1e-12;
  // Padding positions (this id) are masked out of attention and of the mean.
  TORCH_ARG(int64_t, pad_token_id) = 0;
  // L2-normalise the pooled embedding (sentence-transformers' Normalize module).
  TORCH_ARG(bool, normalize) = true;
  // A classification head: a Linear from the pooled embedding (normalised when `normalize`) to this
  // many logits, `classifier.0`; 0: no head, the embedding is the output.
  TORCH_ARG(int64_t, classes) = 0;
  // Which encoder layers of an init file this model's layers start from, in order ({1, 3, 5}: a
  // 3-layer student of a 6-layer teacher); empty: layer k from layer k. Read only when weights are
  // imported from a file without shrink's description (a Hugging Face checkpoint).
  TORCH_ARG(std::vector<int64_t>, init_layers) = {};
};
void validate(const BertOptions& options);

// Runs one of a bert's Linear stacks (query, key, value, each dense, the head) on x [..., in]. Empty
// (the default): the stack's own forward. An inference plan (models/inference_plan.h) passes one
// that runs the stacks' Linear layers on faster kernels, leaving the module as it is.
using BertStackRunner = std::function<at::Tensor(LayerStackImpl& stack, const at::Tensor& x)>;

// A Linear followed by a residual add and LayerNorm: `attention.output` and `output` of a layer.
class BertResidualOutputImpl : public torch::nn::Module {
 public:
  BertResidualOutputImpl(int64_t in, int64_t out, double eps);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& residual, const BertStackRunner& run = {});
  LayerStack dense{nullptr};                // [Linear]
  torch::nn::LayerNorm LayerNorm{nullptr};  // HF's name
};
TORCH_MODULE(BertResidualOutput);

class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  BertSelfAttentionImpl(int64_t hidden, int64_t heads);
  // x [N, L, H]; key_bias [N, 1, 1, L]: 0 where a key is a token, the dtype's lowest at padding.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_bias, const BertStackRunner& run = {});
  LayerStack query{nullptr}, key{nullptr}, value{nullptr};  // [Linear] each
  int64_t heads;
};
TORCH_MODULE(BertSelfAttention);

class BertAttentionImpl : public torch::nn::Module {
 public:
  BertAttentionImpl(const BertOptions& o);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_bias, const BertStackRunner& run = {});
  BertSelfAttention self{nullptr};
  BertResidualOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  BertIntermediateImpl(int64_t hidden, int64_t intermediate);
  at::Tensor forward(const at::Tensor& x, const BertStackRunner& run = {});
  LayerStack dense{nullptr};  // [Linear, GELU (erf, BERT's "gelu")]
};
TORCH_MODULE(BertIntermediate);

class BertLayerImpl : public torch::nn::Module {
 public:
  BertLayerImpl(const BertOptions& o);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& key_bias, const BertStackRunner& run = {});
  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertResidualOutput output{nullptr};
  // [Identity]: the layer's output [N, L, hidden] passes through it, so feature hints and
  // FeatureCapture can name it ("encoder.layer.N.hidden.0"). It holds no parameters: the state
  // dict's names stay Hugging Face's.
  LayerStack hidden{nullptr};
};
TORCH_MODULE(BertLayer);

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  BertEmbeddingsImpl(const BertOptions& o);
  at::Tensor forward(const at::Tensor& ids);  // token type 0 everywhere
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(BertEmbeddings);

class BertEncoderImpl : public torch::nn::Module {
 public:
  BertEncoderImpl(const BertOptions& o);
  torch::nn::ModuleList layer{nullptr};  // HF's name: encoder.layer.N
};
TORCH_MODULE(BertEncoder);

class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(BertOptions options = {});
  // ids [N, L] int64 → [N, hidden] sentence embeddings (mean over the non-padding tokens), or with
  // a head [N, classes] logits. `run` runs the Linear stacks (BertStackRunner).
  at::Tensor forward(const at::Tensor& ids, const BertStackRunner& run = {});
  // The sentence embeddings [N, hidden], with or without a head.
  at::Tensor embed(const at::Tensor& ids, const BertStackRunner& run = {});
  // Every layer's output [N, L', hidden], the embeddings' first (hidden-state hints for
  // distillation). L' ends at the last column holding a token: trailing padding columns, which
  // change no output, are not computed (forward skips them too).
  std::vector<at::Tensor> hidden_states(const at::Tensor& ids);
  // The mean of `tokens` [N, L, H] over the positions of `ids` that are not padding.
  at::Tensor pool(const at::Tensor& tokens, const at::Tensor& ids) const;

  const BertOptions& options() const { return options_; }
  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  LayerStack classifier{nullptr};  // [Linear(hidden, classes)]; registered only with `classes`

 private:
  // The last layer's output; with `every_layer`, each layer's too (the embeddings' first). forward
  // keeps none but the last, so a layer's activations are freed as the next one runs.
  at::Tensor encode(const at::Tensor& ids, std::vector<at::Tensor>* every_layer, const BertStackRunner& run);
  BertOptions options_;
};
TORCH_MODULE(BertModel);

// A student for layer distillation: the teacher's embeddings and the teacher's layers `layers`
// (in that order; "every other layer" of MiniLM-L6 is {1, 3, 5}), copied, so it starts where the
// teacher's own layers would put it. An index outside the teacher's layers is a UsageError.
BertModel bert_student(BertModelImpl& teacher, const std::vector<int64_t>& layers);

// The tensors of `sd` (BertModel's names) with encoder layer k taken from `sd`'s layer layers[k]
// and the other layers dropped. A UsageError names a layer `sd` does not hold.
io::StateDict select_bert_layers(const io::StateDict& sd, const std::vector<int64_t>& layers,
                                 const std::string& source);

// A Hugging Face BERT checkpoint's tensors as BertModel names them: each Linear's `X.weight` and
// `X.bias` (X = query, key, value, dense) become `X.0.weight` and `X.0.bias`, a `bert.` prefix
// (the task models' BertModel) is stripped, `pooler.*` (the [CLS] pooler, which mean pooling does
// not use) dropped, and `embeddings.position_ids` dropped once checked to be 0, 1, 2, … (older
// transformers saved it). A sequence-classification head (`classifier.weight`, which reads the
// [CLS] pooler) is a UsageError: shrink's head reads the mean-pooled embedding. shrink's own head,
// `classifier.0.*`, passes unchanged both ways.
io::StateDict from_hf_bert(const io::StateDict& checkpoint, const std::string& source);
// The reverse: BertModel's tensors under Hugging Face's names (a BertModel checkpoint).
io::StateDict to_hf_bert(const io::StateDict& sd);
// from_hf_bert, then loaded strictly: io::load_state_dict names every missing, unexpected or
// mis-shaped tensor.
void load_hf_bert(BertModelImpl& model, const io::StateDict& checkpoint, const std::string& source);

}  // namespace shrink::models
