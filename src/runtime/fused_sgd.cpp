// FusedSGD: torch::optim::SGD's update rule in one FMA pass per parameter.
#include "runtime/fused_sgd.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty_like.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <memory>
#include <vector>

#include "core/cpu_features.h"
#include "core/torch_compat.h"

namespace shrink::runtime {
namespace {

// Elements a thread takes at least: below this a second thread costs more than it saves.
constexpr int64_t kGrain = 1 << 15;

// The rule's constants as LibTorch rounds them: Scalars applied to a float tensor act as floats.
struct Rule {
  float momentum, keep, minus_lr, weight_decay;  // keep = 1 - dampening
  bool nesterov;
};

enum class Buffer { kNone, kFirst, kUpdate };  // no momentum; the step that creates it; every later one

// LibTorch's vectorized add_(other, alpha) computes fma(other, alpha, self) and its mul_ a plain
// product; the same operations in the same order give the same bits, element by element.
#ifdef SHRINK_X86
#define SHRINK_FMA __attribute__((target("avx2,fma")))
#else
#define SHRINK_FMA
#endif

template <Buffer kMode, bool kDecay, bool kNesterov>
SHRINK_FMA void update(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
                       const Rule& r) {
  for (int64_t i = 0; i < n; ++i) {
    const float d = kDecay ? __builtin_fmaf(p[i], r.weight_decay, g[i]) : g[i];
    float step = d;
    if constexpr (kMode != Buffer::kNone) {
      const float b = kMode == Buffer::kFirst ? d : __builtin_fmaf(d, r.keep, buf[i] * r.momentum);
      buf[i] = b;
      step = kNesterov ? __builtin_fmaf(b, r.momentum, d) : b;
    }
    p[i] = __builtin_fmaf(step, r.minus_lr, p[i]);
  }
}

// The loop for a rule, its branches resolved outside it so that it vectorizes.
template <Buffer kMode>
void update(float* p, const float* g, float* buf, int64_t n, const Rule& r) {
  const bool decay = r.weight_decay != 0.0f;
  if (decay && r.nesterov) return update<kMode, true, true>(p, g, buf, n, r);
  if (decay) return update<kMode, true, false>(p, g, buf, n, r);
  if (r.nesterov) return update<kMode, false, true>(p, g, buf, n, r);
  update<kMode, false, false>(p, g, buf, n, r);
}

void update(float* p, const float* g, float* buf, int64_t n, const Rule& r, Buffer mode) {
  switch (mode) {
    case Buffer::kNone:
      return update<Buffer::kNone>(p, g, buf, n, r);
    case Buffer::kFirst:
      return update<Buffer::kFirst>(p, g, buf, n, r);
    case Buffer::kUpdate:
      return update<Buffer::kUpdate>(p, g, buf, n, r);
  }
}

bool fusable(const at::Tensor& t) {
  return t.device().is_cpu() && t.layout() == at::kStrided && t.scalar_type() == at::kFloat && t.is_contiguous();
}

}  // namespace

FusedSGD::FusedSGD(std::vector<at::Tensor> params, torch::optim::SGDOptions options)
    : torch::optim::SGD(std::move(params), std::move(options)) {}

at::Tensor FusedSGD::step(LossClosure closure) {
  // Each parameter with a gradient and its momentum buffer (undefined before its first step),
  // looked up once. Decided before touching anything, so a step is wholly fused or wholly LibTorch's.
  struct Entry {
    at::Tensor param, buffer;
  };
  std::vector<std::vector<Entry>> groups;
  bool all = core::cpu_has_avx2_fma();
  for (const auto& group : param_groups_) {
    auto& entries = groups.emplace_back();
    for (const auto& p : group.params()) {
      if (!all) break;
      if (!p.grad().defined()) continue;
      const auto it = state_.find(compat::optimizer_state_key(state_, p));
      const auto buffer =
          it == state_.end() ? at::Tensor() : static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer();
      all = fusable(p) && fusable(p.grad()) && p.grad().sizes() == p.sizes() && (!buffer.defined() || fusable(buffer));
      entries.push_back({p, buffer});
    }
  }
  last_fused_ = all;
  if (!all) return torch::optim::SGD::step(std::move(closure));

  const torch::NoGradGuard no_grad;
  at::Tensor loss;
  if (closure) {
    const torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(param_groups_[gi].options());
    const Rule rule{static_cast<float>(o.momentum()), static_cast<float>(1 - o.dampening()),
                    static_cast<float>(-1 * o.lr()), static_cast<float>(o.weight_decay()), o.nesterov()};
    for (auto& [p, buf] : groups[gi]) {
      Buffer mode = Buffer::kNone;
      if (o.momentum() != 0) {
        mode = buf.defined() ? Buffer::kUpdate : Buffer::kFirst;
        if (!buf.defined()) {
          buf = at::empty_like(p, at::MemoryFormat::Contiguous);
          auto state = std::make_unique<torch::optim::SGDParamState>();
          state->momentum_buffer(buf);
          state_[compat::optimizer_state_key(state_, p)] = std::move(state);
        }
      }
      float* pp = p.data_ptr<float>();
      const float* pg = p.grad().data_ptr<float>();
      float* pb = mode == Buffer::kNone ? nullptr : buf.data_ptr<float>();
      at::parallel_for(0, p.numel(), kGrain,
                       [&](int64_t b, int64_t e) { update(pp + b, pg + b, pb ? pb + b : nullptr, e - b, rule, mode); });
    }
  }
  return loss;
}

}  // namespace shrink::runtime
