// BERT encoder: embeddings → post-LayerNorm layers (self-attention, GELU feed-forward) → mean pool.
#include "models/bert.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace shrink::models {

using core::cat;

void validate(const BertOptions& o) {
  SHRINK_CHECK(o.vocab_size() > 0 && o.hidden() > 0 && o.layers() >= 0 && o.heads() > 0 && o.intermediate() > 0 &&
                   o.max_positions() > 0 && o.type_vocab_size() > 0,
               "bert: sizes must be positive");
  if (o.hidden() % o.heads() != 0) {
    throw core::UsageError(cat("bert: hidden (", o.hidden(), ") must be a multiple of heads (", o.heads(), ")"));
  }
  if (o.pad_token_id() < 0 || o.pad_token_id() >= o.vocab_size()) {
    throw core::UsageError(cat("bert: pad_token_id must be in [0, ", o.vocab_size(), "), got ", o.pad_token_id()));
  }
  if (o.classes() != 0 && o.classes() < 2) {
    throw core::UsageError(cat("bert: classes must be 0 (no head) or at least 2, got ", o.classes()));
  }
  if (!o.init_layers().empty() && static_cast<int64_t>(o.init_layers().size()) != o.layers()) {
    throw core::UsageError(cat("bert: init_layers names ", o.init_layers().size(), " layers for a model of ",
                               o.layers(), " (one source layer per layer)"));
  }
  for (const auto l : o.init_layers()) {
    if (l < 0) throw core::UsageError(cat("bert: init_layers must be >= 0, got ", l));
  }
}

namespace {

// A stack's output as float: a statically quantized Linear (PTQ, QAT) hands on quint8, which the
// attention's matmuls, the residual adds and LayerNorm do not take — eager PyTorch's DeQuantStub
// after each quantized Linear of a transformer.
at::Tensor as_float(const at::Tensor& x) { return x.is_quantized() ? x.dequantize() : x; }

at::Tensor run_stack(const BertStackRunner& run, LayerStack& stack, const at::Tensor& x) {
  return run ? run(*stack, x) : stack->forward(x);
}

LayerStack linear_stack(int64_t in, int64_t out) {
  LayerStack stack;
  stack->push_back(torch::nn::Linear(in, out));
  return stack;
}

}  // namespace

BertResidualOutputImpl::BertResidualOutputImpl(int64_t in, int64_t out, double eps) {
  dense = register_module("dense", linear_stack(in, out));
  LayerNorm = register_module("LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({out}).eps(eps)));
}

at::Tensor BertResidualOutputImpl::forward(const at::Tensor& x, const at::Tensor& residual,
                                           const BertStackRunner& run) {
  return LayerNorm(as_float(run_stack(run, dense, x)) + residual);
}

BertSelfAttentionImpl::BertSelfAttentionImpl(int64_t hidden, int64_t heads_) : heads(heads_) {
  query = register_module("query", linear_stack(hidden, hidden));
  key = register_module("key", linear_stack(hidden, hidden));
  value = register_module("value", linear_stack(hidden, hidden));
}

at::Tensor BertSelfAttentionImpl::forward(const at::Tensor& x, const at::Tensor& key_bias, const BertStackRunner& run) {
  const auto n = x.size(0), l = x.size(1), h = x.size(2), d = h / heads;
  const auto split = [&](const at::Tensor& t) { return t.view({n, l, heads, d}).transpose(1, 2); };  // [N, heads, L, d]
  const auto project = [&](LayerStack& stack) { return split(as_float(run_stack(run, stack, x))); };
  const auto q = project(query), k = project(key), v = project(value);
  auto scores = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(d)) + key_bias;
  const auto context = at::matmul(at::softmax(scores, -1), v);  // [N, heads, L, d]
  return context.transpose(1, 2).reshape({n, l, h});
}

BertAttentionImpl::BertAttentionImpl(const BertOptions& o) {
  self = register_module("self", BertSelfAttention(o.hidden(), o.heads()));
  output = register_module("output", BertResidualOutput(o.hidden(), o.hidden(), o.layer_norm_eps()));
}

at::Tensor BertAttentionImpl::forward(const at::Tensor& x, const at::Tensor& key_bias, const BertStackRunner& run) {
  return output->forward(self->forward(x, key_bias, run), x, run);
}

BertIntermediateImpl::BertIntermediateImpl(int64_t hidden, int64_t intermediate) {
  dense = register_module("dense", linear_stack(hidden, intermediate));
  dense->push_back(torch::nn::GELU());
}

at::Tensor BertIntermediateImpl::forward(const at::Tensor& x, const BertStackRunner& run) {
  return as_float(run_stack(run, dense, x));
}

BertLayerImpl::BertLayerImpl(const BertOptions& o) {
  attention = register_module("attention", BertAttention(o));
  intermediate = register_module("intermediate", BertIntermediate(o.hidden(), o.intermediate()));
  output = register_module("output", BertResidualOutput(o.intermediate(), o.hidden(), o.layer_norm_eps()));
  hidden = register_module("hidden", LayerStack());
  hidden->push_back(torch::nn::Identity());
}

at::Tensor BertLayerImpl::forward(const at::Tensor& x, const at::Tensor& key_bias, const BertStackRunner& run) {
  const auto a = attention->forward(x, key_bias, run);
  return hidden(output->forward(intermediate->forward(a, run), a, run));
}

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertOptions& o) {
  word_embeddings = register_module("word_embeddings", torch::nn::Embedding(o.vocab_size(), o.hidden()));
  position_embeddings = register_module("position_embeddings", torch::nn::Embedding(o.max_positions(), o.hidden()));
  token_type_embeddings =
      register_module("token_type_embeddings", torch::nn::Embedding(o.type_vocab_size(), o.hidden()));
  LayerNorm = register_module("LayerNorm",
                              torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden()}).eps(o.layer_norm_eps())));
}

at::Tensor BertEmbeddingsImpl::forward(const at::Tensor& ids) {
  const auto positions = at::arange(ids.size(1), ids.options());
  // Token type 0 for every position: one segment, as sentence embedding feeds it.
  return LayerNorm(word_embeddings(ids) + position_embeddings(positions).unsqueeze(0) +
                   token_type_embeddings->weight[0]);
}

BertEncoderImpl::BertEncoderImpl(const BertOptions& o) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.layers(); ++i) layer->push_back(BertLayer(o));
}

BertModelImpl::BertModelImpl(BertOptions options) : options_(std::move(options)) {
  validate(options_);
  embeddings = register_module("embeddings", BertEmbeddings(options_));
  encoder = register_module("encoder", BertEncoder(options_));
  if (options_.classes() > 0) {
    classifier = register_module("classifier", linear_stack(options_.hidden(), options_.classes()));
  }
}

namespace {

void check_ids(const at::Tensor& ids, const BertOptions& o) {
  if (ids.dim() != 2 || ids.scalar_type() != at::kLong) {
    throw core::UsageError(
        cat("bert: token ids must be an int64 tensor [N, L], got ", ids.scalar_type(), " ", ids.sizes()));
  }
  if (ids.size(1) > o.max_positions()) {
    throw core::UsageError(cat("bert: ", ids.size(1), " tokens exceed max_positions (", o.max_positions(), ")"));
  }
  if (ids.numel() > 0 && !ids.is_meta()) {  // meta tensors (validation's shape probes) hold no values
    const auto [min, max] = at::aminmax(ids);
    const auto lo = min.item<int64_t>(), hi = max.item<int64_t>();
    if (lo < 0 || hi >= o.vocab_size()) {
      throw core::UsageError(
          cat("bert: token ids must be in [0, ", o.vocab_size(), "), got values in [", lo, ", ", hi, "]"));
    }
  }
}

// `ids` without its trailing columns of padding only: they change no output (attention and the
// mean both mask padding), and a batch padded to a file's longest sentence costs the longest's time.
at::Tensor trim_padding(const at::Tensor& ids, const BertOptions& o) {
  if (ids.dim() != 2 || ids.size(1) == 0 || ids.is_meta()) return ids;
  const auto columns = ids.ne(o.pad_token_id()).any(0).nonzero();
  const int64_t keep = columns.numel() == 0 ? 1 : columns.max().item<int64_t>() + 1;
  return keep == ids.size(1) ? ids : ids.narrow(1, 0, keep);
}

}  // namespace

at::Tensor BertModelImpl::encode(const at::Tensor& ids, std::vector<at::Tensor>* every_layer,
                                 const BertStackRunner& run) {
  check_ids(ids, options_);
  auto x = embeddings(ids);
  // Padding keys get the dtype's lowest value, as transformers' extended attention mask does.
  const auto key_bias = ids.eq(options_.pad_token_id())
                            .to(x.scalar_type())
                            .mul(std::numeric_limits<float>::lowest())
                            .view({ids.size(0), 1, 1, ids.size(1)});
  if (every_layer) every_layer->push_back(x);
  for (const auto& layer : *encoder->layer) {
    x = layer->as<BertLayer>()->forward(x, key_bias, run);
    if (every_layer) every_layer->push_back(x);
  }
  return x;
}

std::vector<at::Tensor> BertModelImpl::hidden_states(const at::Tensor& ids) {
  std::vector<at::Tensor> out;
  encode(trim_padding(ids, options_), &out, {});
  return out;
}

at::Tensor BertModelImpl::pool(const at::Tensor& tokens, const at::Tensor& ids) const {
  const auto mask = ids.ne(options_.pad_token_id()).unsqueeze(-1).to(tokens.scalar_type());
  return (tokens * mask).sum(1) / mask.sum(1).clamp_min(1e-9);
}

at::Tensor BertModelImpl::forward(const at::Tensor& ids, const BertStackRunner& run) {
  return classifier ? as_float(run_stack(run, classifier, embed(ids, run))) : embed(ids, run);
}

at::Tensor BertModelImpl::embed(const at::Tensor& ids, const BertStackRunner& run) {
  const auto trimmed = trim_padding(ids, options_);
  auto pooled = pool(encode(trimmed, nullptr, run), trimmed);
  if (options_.normalize())
    pooled = torch::nn::functional::normalize(pooled, torch::nn::functional::NormalizeFuncOptions().p(2).dim(1));
  return pooled;
}

BertModel bert_student(BertModelImpl& teacher, const std::vector<int64_t>& layers) {
  const auto n = teacher.options().layers();
  for (const auto l : layers) {
    if (l < 0 || l >= n)
      throw core::UsageError(cat("bert student: layer ", l, " is not one of the teacher's 0..", n - 1));
  }
  BertModel student(BertOptions(teacher.options()).layers(static_cast<int64_t>(layers.size())).init_layers(layers));
  // load_state_dict copies: the student shares no storage with the teacher.
  io::load_state_dict(*student, select_bert_layers(io::state_dict(teacher), layers, "bert student"), "bert student");
  return student;
}

io::StateDict select_bert_layers(const io::StateDict& sd, const std::vector<int64_t>& layers,
                                 const std::string& source) {
  const std::string prefix = "encoder.layer.";
  io::StateDict out;
  std::vector<bool> found(layers.size(), false);
  for (const auto& e : sd) {
    if (e.name.rfind(prefix, 0) != 0) {
      out.push_back(e);
      continue;
    }
    const auto dot = e.name.find('.', prefix.size());
    const auto index = e.name.substr(prefix.size(), dot - prefix.size());
    for (size_t k = 0; k < layers.size(); ++k) {
      if (dot == std::string::npos || index != std::to_string(layers[k])) continue;
      out.push_back({cat(prefix, k, e.name.substr(dot)), e.tensor, e.is_buffer});
      found[k] = true;
    }
  }
  for (size_t k = 0; k < layers.size(); ++k) {
    if (!found[k]) throw core::UsageError(cat(source, ": holds no encoder layer ", layers[k], " (init_layers)"));
  }
  return out;
}

io::StateDict from_hf_bert(const io::StateDict& checkpoint, const std::string& source) {
  io::StateDict sd;
  for (const auto& e : checkpoint) {
    std::string name = e.name;
    if (name.rfind("bert.", 0) == 0) name = name.substr(5);
    if (name.rfind("pooler.", 0) == 0) continue;
    if (name == "classifier.weight" || name == "classifier.bias") {
      throw core::UsageError(cat(source, ": holds a sequence-classification head (", e.name,
                                 ") over BERT's [CLS] pooler, which shrink's bert does not compute (its head reads "
                                 "the mean-pooled embedding): start from the encoder's weights alone"));
    }
    if (name == "embeddings.position_ids") {
      const auto expected = at::arange(e.tensor.size(-1), at::kLong).view(e.tensor.sizes());
      if (e.tensor.scalar_type() != at::kLong || !at::equal(e.tensor, expected)) {
        throw core::UsageError(cat(source,
                                   ": embeddings.position_ids is not 0, 1, 2, …: positions this model does not "
                                   "compute"));
      }
      continue;
    }
    for (const char* layer : {".query.", ".key.", ".value.", ".dense."}) {
      const auto at = name.rfind(layer);
      const auto leaf = at == std::string::npos ? std::string() : name.substr(at + std::strlen(layer));
      if (leaf == "weight" || leaf == "bias") name = name.substr(0, at + std::strlen(layer)) + "0." + leaf;
    }
    sd.push_back({name, e.tensor, e.is_buffer});
  }
  return sd;
}

io::StateDict to_hf_bert(const io::StateDict& sd) {
  io::StateDict out;
  for (const auto& e : sd) {
    std::string name = e.name;
    for (const char* layer : {".query.0.", ".key.0.", ".value.0.", ".dense.0."}) {
      const auto at = name.rfind(layer);
      if (at != std::string::npos) name.erase(at + std::strlen(layer) - 2, 2);
    }
    out.push_back({name, e.tensor, e.is_buffer});
  }
  return out;
}

void load_hf_bert(BertModelImpl& model, const io::StateDict& checkpoint, const std::string& source) {
  io::load_state_dict(model, from_hf_bert(checkpoint, source), source);
}

}  // namespace shrink::models
