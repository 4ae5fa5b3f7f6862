// Compiles a Classifier's layer stacks, or a bert's Linear stacks, into chains of fast ops; unknown
// layers run as they are.
#include "models/inference_plan.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/error.h"
#include "core/format.h"
#include "core/keyed_registry.h"
#include "models/batch_norm_affine.h"
#include "models/bert.h"
#include "models/classifier.h"
#include "models/residual_block.h"
#include "runtime/conv2d_geometry.h"
#include "runtime/csr_linear.h"
#include "runtime/packed_linear.h"
#include "runtime/timing.h"

namespace shrink::models {

namespace nn = torch::nn;
using core::cat;

namespace {

using Op = PlanOp;

core::KeyedRegistry<LayerPlanner, std::type_index>& planners() {
  static core::KeyedRegistry<LayerPlanner, std::type_index> p("layer planner");
  return p;
}

LayerPlanner planner_for(const torch::nn::Module& layer) {
  return planners().find(std::type_index(typeid(layer))).value_or(LayerPlanner());
}

struct Chain {
  std::vector<Op> ops;

  at::Tensor run(at::Tensor x) const {
    for (const auto& op : ops) x = op(std::move(x));
    return x;
  }
};

at::Tensor dense(const at::Tensor& x) { return dense_input(x); }
at::Tensor onednn(const at::Tensor& x) { return x.is_mkldnn() ? x : x.to(at::kFloat).contiguous().to_mkldnn(); }

// A decision between two paths watches each for at least this long: seven calls of a 15 µs batch-1
// MLP are a tenth of a millisecond, short enough for a brief burst of load to decide it (in one
// benchmark run of eight the plan chose at::linear over addmv, 1.5x slower).
constexpr double kMinTrialSeconds = 2e-3;
constexpr int64_t kMaxTrialCalls = 1000;
// Kernels are timed on at most this many rows: a bert's batch of 128 sentences of 128 tokens is
// 16,384 rows a Linear (seconds a forward), and both Linear kernels have reached their steady
// throughput by 1,024 (bench/ BM_LinearFp32Packed at 128 and 4096 rows).
constexpr int64_t kMaxTrialRows = 1024;

// Median seconds of `a` and of `b` over at least `calls` runs each and until each has run for
// kMinTrialSeconds (at most kMaxTrialCalls), alternating, after one untimed run each.
std::pair<double, double> median_seconds(const std::function<void()>& a, const std::function<void()>& b,
                                         int64_t calls) {
  const auto t = runtime::time_interleaved({a, b}, runtime::TimingOptions()
                                                       .warmup(1)
                                                       .min_calls(std::max<int64_t>(calls, 1))
                                                       .min_seconds(kMinTrialSeconds)
                                                       .max_calls(std::max<int64_t>(calls, kMaxTrialCalls)));
  return {runtime::median(t[0].seconds), runtime::median(t[1].seconds)};
}

// A layer's weight and bias with the BatchNorm right after it (eval mode) folded in, whether a
// ReLU follows to be fused, and how many layers that absorbs.
struct Folded {
  at::Tensor w, b;
  bool relu = false;
  size_t used = 1;
};

template <class BatchNormImpl>
Folded fold(const LayerStack& s, size_t i, const at::Tensor& weight, const at::Tensor& bias) {
  Folded f;
  f.w = weight.detach().to(at::kFloat);
  f.b = bias.defined() ? bias.detach().to(at::kFloat) : at::zeros({f.w.size(0)});
  if (i + 1 < s->size()) {
    if (auto bn = s->as<BatchNormImpl>(i + 1)) {
      const auto a = affine_of(*bn);
      if (a.scale.defined()) {
        std::vector<int64_t> shape(static_cast<size_t>(f.w.dim()), 1);
        shape[0] = -1;
        f.w = f.w * a.scale.view(shape);
        f.b = f.b * a.scale + a.shift;
        ++f.used;
      }
    }
  }
  f.relu = i + f.used < s->size() && s->as<nn::ReLUImpl>(i + f.used) != nullptr;
  if (f.relu) ++f.used;
  f.w = f.w.contiguous();
  f.b = f.b.contiguous();
  return f;
}

class Compiler : public PlanContext {
 public:
  Compiler(int64_t batch, const InferenceOptions& options) : batch_(batch), options_(options) {}

  // The fast op kinds compiled so far, in order of first use, and whether an int8 op is among
  // them (the looser tolerance applies).
  const std::vector<std::string>& kinds() const { return kinds_; }
  bool int8() const { return int8_; }

  int64_t batch() const override { return batch_; }
  const InferenceOptions& options() const override { return options_; }
  void uses(const std::string& k, bool int8) override {
    kind(k);
    int8_ = int8_ || int8;
  }

  void stack(const LayerStack& s, Chain& c) {
    if (!s->plain()) {
      c.ops.push_back([impl = s.ptr()](at::Tensor x) { return impl->forward(dense(x)); });
      return;
    }
    for (size_t i = 0; i < s->size();) i += layer(s, i, c);
  }

 private:
  // Compiles layer i (and the ones it absorbs); returns how many layers it consumed.
  size_t layer(const LayerStack& s, size_t i, Chain& c) {
    if (s->dequantizes_input(i)) c.ops.push_back([](at::Tensor x) { return x.is_quantized() ? x.dequantize() : x; });
    if (auto conv = s->as<nn::Conv2dImpl>(i)) return conv2d(s, i, *conv, c);
    if (auto linear = s->as<nn::LinearImpl>(i)) return fc(s, i, *linear, c);
    if (s->as<nn::ReLUImpl>(i)) {
      c.ops.push_back([](at::Tensor x) { return at::relu(x); });
      return 1;
    }
    if (auto pool = s->as<nn::MaxPool2dImpl>(i)) {
      c.ops.push_back(max_pool(pool->options, false));
      return 1;
    }
    if (s->as<nn::DropoutImpl>(i) || s->as<nn::IdentityImpl>(i)) return 1;  // eval mode: identity
    if (auto block = s->as<ResidualBlockImpl>(i)) {
      if (!block->add->is_int8() && !block->add->has_output_hook() && block->body->plain() &&
          block->shortcut->plain()) {
        return residual(*block, c);
      }
    }
    if (const auto planner = planner_for(*s->ptr(i))) {
      if (auto op = planner(s->ptr(i), *this)) {
        c.ops.push_back(std::move(op));
        return 1;
      }
    }
    c.ops.push_back(as_is(s, i));
    return 1;
  }

  // Layer i run by its own forward, on a dense input.
  static Op as_is(const LayerStack& s, size_t i) {
    return [impl = s.ptr(), i](at::Tensor x) { return impl->run_layer(i, dense(x)); };
  }

  static Op max_pool(const nn::MaxPool2dOptions& o, bool relu) {
    return [o, relu](at::Tensor x) {
      auto y = at::max_pool2d(x, o.kernel_size(), o.stride(), o.padding(), o.dilation(), o.ceil_mode());
      return relu ? at::relu_(y) : y;
    };
  }

  size_t conv2d(const LayerStack& s, size_t i, nn::Conv2dImpl& conv, Chain& c) {
    const bool zeros = torch::enumtype::get_enum_name(conv.options.padding_mode()) == "kZeros";
    if (!zeros || !conv.weight.is_floating_point() || !conv.weight.device().is_cpu()) {
      c.ops.push_back(as_is(s, i));
      return 1;
    }
    const auto g = runtime::geometry_of(conv);
    const auto f = fold<nn::BatchNorm2dImpl>(s, i, conv.weight, conv.bias);
    const auto packed = at::mkldnn_reorder_conv2d_weight(f.w.to_mkldnn(), g.padding, g.stride, g.dilation, g.groups);
    // ReLU and max pooling commute (the largest of the ReLUs is the ReLU of the largest), so a
    // ReLU followed by a max pooling runs after the pooling, on a quarter of the values for 2x2.
    const size_t next = i + f.used;
    auto pool = f.relu && next < s->size() ? s->as<nn::MaxPool2dImpl>(next) : nullptr;
    c.ops.push_back([packed, b = f.b, g, relu = f.relu && !pool](at::Tensor x) {
      auto y = at::mkldnn_convolution(onednn(x), packed, b, g.padding, g.stride, g.dilation, g.groups);
      return relu ? at::relu_(y) : y;
    });
    kind("onednn-conv");
    if (!pool) return f.used;
    c.ops.push_back(max_pool(pool->options, true));
    return f.used + 1;
  }

  size_t fc(const LayerStack& s, size_t i, nn::LinearImpl& linear, Chain& c) {
    const auto f = fold<nn::BatchNorm1dImpl>(s, i, linear.weight, linear.bias);
    const auto& w = f.w;
    const auto& b = f.b;
    const bool relu = f.relu;
    const size_t used = f.used;
    // One sample: a GEMV (at::linear's GEMM setup costs several times the arithmetic).
    Op dense_op = [w, b, relu](at::Tensor x) {
      x = dense(x);
      auto y = x.size(0) == 1 ? at::addmv(b, w, x.select(0, 0)).unsqueeze(0) : at::linear(x, w, b);
      return relu ? at::relu_(y) : y;
    };
    std::string dense_kind = batch_ == 1 ? "addmv" : "linear";
    const auto choice = options_.dense_linear();
    const auto path = runtime::best_vector_path();
    if (choice == DenseLinear::kPacked ||
        (choice == DenseLinear::kFastest && path != runtime::VectorPath::kReference)) {
      auto packed = std::make_shared<runtime::PackedLinearWeights>(runtime::pack_linear(w, b));
      Op op = [packed, relu, path](at::Tensor x) { return runtime::packed_linear(*packed, dense(x), relu, path); };
      if (choice == DenseLinear::kPacked || faster(op, dense_op, w.size(1))) {
        dense_op = std::move(op);
        dense_kind = "packed-linear";
      }
    }
    const double sparsity =
        1.0 - static_cast<double>(w.count_nonzero().item<int64_t>()) / static_cast<double>(w.numel());
    if (sparsity >= options_.min_sparsity() && sparsity > 0) {
      auto csr = std::make_shared<runtime::CsrWeights>(runtime::csr_from_dense(w, b));
      // Each vector path is a candidate: which one wins depends on the sparsity and the CPU.
      const auto paths = runtime::vector_paths();
      Op best;
      for (const auto path : paths) {
        if (path == runtime::VectorPath::kReference && paths.size() > 1) continue;
        Op op = [csr, relu, path](at::Tensor x) { return runtime::csr_linear(*csr, dense(x), relu, path); };
        if (!options_.measure_sparse()) {
          best = std::move(op);
          break;
        }
        if (faster(op, best ? best : dense_op, w.size(1))) best = std::move(op);
      }
      if (best) {
        c.ops.push_back(std::move(best));
        kind("csr-linear");
        return used;
      }
    }
    c.ops.push_back(std::move(dense_op));
    kind(dense_kind);
    return used;
  }

  size_t residual(ResidualBlockImpl& block, Chain& c) {
    auto body = std::make_shared<Chain>(), shortcut = std::make_shared<Chain>();
    stack(block.body, *body);
    stack(block.shortcut, *shortcut);
    const bool relu = block.add->relu();
    c.ops.push_back([body, shortcut, relu](at::Tensor x) {
      auto a = body->run(x);
      auto b = shortcut->ops.empty() ? x : shortcut->run(x);
      // Both in oneDNN's layout (its add) or both dense.
      if (a.is_mkldnn() != b.is_mkldnn()) {
        a = onednn(a);
        b = onednn(b);
      }
      auto y = at::add(a, b);
      return relu ? at::relu(y) : y;
    });
    return 1;
  }

  // Whether `candidate` beats `incumbent` on a random batch of `features` values a sample.
  bool faster(const Op& candidate, const Op& incumbent, int64_t features) const override {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(99);
    const auto x = at::normal(0.0, 1.0, {std::min(batch_, kMaxTrialRows), features}, gen);
    const auto [a, b] = median_seconds([&] { candidate(x); }, [&] { incumbent(x); }, options_.trial_calls());
    return a < b;
  }

  void kind(const std::string& k) {
    if (std::find(kinds_.begin(), kinds_.end(), k) == kinds_.end()) kinds_.push_back(k);
  }

  int64_t batch_;
  InferenceOptions options_;
  std::vector<std::string> kinds_;
  bool int8_ = false;
};

}  // namespace

void register_layer_planner(std::type_index type, LayerPlanner planner) { planners().add(type, std::move(planner)); }

at::Tensor dense_input(const at::Tensor& x) { return x.is_mkldnn() ? x.to_dense() : x; }

namespace {

// The fast path's largest difference from the module's own logits on `probe`, relative to the
// largest logit (at least 1).
double relative_error(const ForwardFn& fast, const ForwardFn& plain, const at::Tensor& probe) {
  const auto expected = plain(probe).to(at::kFloat);
  const auto got = fast(probe).to(at::kFloat);
  SHRINK_CHECK(got.sizes() == expected.sizes(), "fast inference path gave logits of shape ", got.sizes(),
               " where the model gives ", expected.sizes());
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  return (got - expected).abs().max().item<double>() / scale;
}

// Records `fast` as the plan's candidate and, if its logits on `probe` are the model's within
// `tolerance`, times the two on it (alternated) and keeps the faster.
void choose(InferencePlan& plan, const Model& model, const ForwardFn& fast, const std::string& path,
            const at::Tensor& probe, double tolerance, const InferenceOptions& options) {
  plan.candidate = fast;
  plan.candidate_path = path;
  plan.max_error = relative_error(fast, model.forward, probe);
  if (!(plan.max_error <= tolerance)) return;
  const auto [plain_s, fast_s] =
      median_seconds([&] { model.forward(probe); }, [&] { fast(probe); }, options.trial_calls());
  plan.plain_ms = 1e3 * plain_s;
  plan.fast_ms = 1e3 * fast_s;
  if (plan.fast_ms < plan.plain_ms) {
    plan.forward = fast;
    plan.path = plan.candidate_path;
  }
}

void plan_classifier(InferencePlan& plan, const Model& model, const std::shared_ptr<ClassifierImpl>& classifier,
                     const std::vector<int64_t>& sample_shape, int64_t batch, const InferenceOptions& options) {
  Compiler compiler(batch, options);
  auto features = std::make_shared<Chain>(), head = std::make_shared<Chain>();
  if (classifier->features->size() > 0) compiler.stack(classifier->features, *features);
  compiler.stack(classifier->classifier, *head);
  if (compiler.kinds().empty()) return;

  ForwardFn fast = [features, head, classifier](const at::Tensor& x) {
    auto y = dense(features->run(x)).flatten(1);
    y = dense(head->run(std::move(y)));
    return y.is_quantized() ? y.dequantize() : y;
  };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  const auto probe = at::normal(0.0, 1.0, batch_shape(batch, sample_shape), gen);
  choose(plan, model, fast, core::join(compiler.kinds()), probe,
         compiler.int8() ? kMaxFastPathInt8Error : kMaxFastPathError, options);
}

// A bert's float Linear stacks compiled as a classifier's layers are, the dense ones on the packed
// kernel (with kFastest) and pruned ones timed on CSR; attention's products, GELU and LayerNorm run
// as the module runs them, and so do stacks already quantized. Timed whole against the module's
// forward, as a classifier's chain is, but on at most kMaxTrialRows token rows. Choosing layer by
// layer, each kernel timed alone with its weights in cache, picked LibTorch's for some of MiniLM's
// shapes at 1 × 128 in some runs, where inside the model, its weights coming from memory, the
// packed kernel measured faster.
void plan_bert(InferencePlan& plan, const Model& model, const std::shared_ptr<BertModelImpl>& bert,
               const std::vector<int64_t>& sample_shape, int64_t batch, const InferenceOptions& options) {
  int64_t tokens = 1;
  for (const auto d : sample_shape) tokens *= d;
  tokens = std::max<int64_t>(tokens, 1);
  auto o = options;
  if (o.dense_linear() == DenseLinear::kFastest) {
    o.dense_linear(runtime::best_vector_path() == runtime::VectorPath::kReference ? DenseLinear::kLibTorch
                                                                                  : DenseLinear::kPacked);
  }
  Compiler encoder(batch * tokens, o), head(batch, o);
  using Chains = std::unordered_map<const LayerStackImpl*, std::shared_ptr<Chain>>;
  auto chains = std::make_shared<Chains>();
  for (const auto& module : bert->modules(/*include_self=*/false)) {
    auto stack = std::dynamic_pointer_cast<LayerStackImpl>(module);
    if (!stack || !stack->plain() || stack->size() == 0) continue;
    const auto linear = stack->as<torch::nn::LinearImpl>(0);
    if (!linear || !linear->weight.is_floating_point() || !linear->weight.device().is_cpu()) continue;
    auto chain = std::make_shared<Chain>();
    const bool is_head = bert->classifier && stack.get() == bert->classifier.get();
    (is_head ? head : encoder).stack(LayerStack(stack), *chain);
    chains->emplace(stack.get(), std::move(chain));
  }
  auto kinds = encoder.kinds();
  for (const auto& k : head.kinds()) {
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  }
  // LibTorch's kernels alone are what the module runs.
  if (std::all_of(kinds.begin(), kinds.end(), [](const std::string& k) { return k == "linear" || k == "addmv"; })) {
    return;
  }

  const BertStackRunner run = [chains](LayerStackImpl& stack, const at::Tensor& x) {
    const auto it = chains->find(&stack);
    if (it == chains->end()) return stack.forward(x);
    auto sizes = x.sizes().vec();
    auto y = dense(it->second->run(x.reshape({-1, sizes.back()})));
    sizes.back() = y.size(-1);
    return y.view(sizes);
  };
  ForwardFn fast = [bert, run](const at::Tensor& ids) { return bert->forward(ids, run); };
  // Token ids other than padding.
  const auto& b = bert->options();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  const int64_t sentences = std::clamp<int64_t>(kMaxTrialRows / tokens, 1, batch);
  auto probe = at::randint(0, b.vocab_size() - 1, batch_shape(sentences, sample_shape), gen,
                           at::TensorOptions().dtype(at::kLong));
  probe += probe.ge(b.pad_token_id()).to(at::kLong);
  choose(plan, model, fast, core::join(kinds), probe, kMaxFastPathError, options);
}

}  // namespace

uint64_t plan_copy_bytes(const torch::nn::Module& module) {
  uint64_t bytes = 0;
  const auto add = [&](int64_t values) { bytes += static_cast<uint64_t>(values) * sizeof(float); };
  for (const auto& m : module.modules()) {
    if (const auto* linear = dynamic_cast<const nn::LinearImpl*>(m.get())) {
      if (!linear->weight.is_floating_point()) continue;
      const int64_t padded =
          (linear->weight.size(0) + runtime::kPackedPanel - 1) / runtime::kPackedPanel * runtime::kPackedPanel;
      add(padded * (linear->weight.size(1) + 1));
    } else if (const auto* conv = dynamic_cast<const nn::Conv2dImpl*>(m.get())) {
      if (!conv->weight.is_floating_point()) continue;
      add(conv->weight.numel() + conv->weight.size(0));
    }
  }
  return bytes;
}

InferencePlan plan_inference(const Model& model, const std::vector<int64_t>& sample_shape, int64_t batch,
                             const c10::Device& device, const InferenceOptions& options) {
  SHRINK_CHECK(batch > 0, "inference batch must be > 0, got ", batch);
  SHRINK_CHECK(options.min_sparsity() >= 0 && options.min_sparsity() <= 1, "min_sparsity must be in [0, 1], got ",
               options.min_sparsity());
  InferencePlan plan;
  plan.forward = model.forward;
  plan.path = "plain";
  auto classifier = std::dynamic_pointer_cast<ClassifierImpl>(model.module);
  auto bert = std::dynamic_pointer_cast<BertModelImpl>(model.module);
  if (!options.fast() || !device.is_cpu() || (!classifier && !bert)) return plan;

  torch::NoGradGuard no_grad;
  model.module->eval();
  if (classifier) {
    plan_classifier(plan, model, classifier, sample_shape, batch, options);
  } else {
    plan_bert(plan, model, bert, sample_shape, batch, options);
  }
  return plan;
}

}  // namespace shrink::models
