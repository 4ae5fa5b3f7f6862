// Buckets of gradients, filled by hooks as backward produces them and all-reduced in order.
#include "dist/gradient_reducer.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "core/stopwatch.h"

namespace shrink::dist {

using core::cat;

struct GradientReducer::Bucket {
  at::Tensor flat;             // the bucket's gradients, back to back
  std::vector<size_t> params;  // indices into params_
  int64_t waiting = 0;         // parameters whose gradient has not arrived this step
  std::unique_ptr<ProcessGroup::Pending> pending;
};

GradientReducer::GradientReducer(std::shared_ptr<ProcessGroup> group, const NamedTensors& params)
    : group_(std::move(group)) {
  SHRINK_CHECK(group_, "GradientReducer needs a process group");
  for (const auto& [name, p] : params) {
    if (!p.requires_grad()) continue;
    params_.push_back(p);
    names_.push_back(name);
  }
  const double mb = group_->options().bucket_mb();
  overlap_ = mb > 0;
  const auto cap = static_cast<int64_t>(mb * 1024 * 1024);
  slots_.resize(params_.size());
  arrived_.assign(params_.size(), 0);
  // Backward produces the last layers' gradients first: buckets follow the parameters in reverse.
  int64_t filled = 0;
  std::vector<int64_t> sizes;
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    bool open_new = buckets_.empty();
    if (!open_new) {
      const auto& first = params_[buckets_.back()->params.front()];
      open_new = first.scalar_type() != p.scalar_type() || first.device() != p.device() ||
                 (overlap_ && filled > 0 && filled + bytes > cap);
    }
    if (open_new) {
      buckets_.push_back(std::make_unique<Bucket>());
      sizes.push_back(0);
      filled = 0;
    }
    auto& bucket = *buckets_.back();
    slots_[k] = {buckets_.size() - 1, sizes.back()};
    bucket.params.push_back(k);
    sizes.back() += p.numel();
    filled += bytes;
    stats_.bytes += bytes;
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const auto& p = params_[buckets_[b]->params.front()];
    buckets_[b]->flat = at::zeros({sizes[b]}, p.options().requires_grad(false));
  }
  stats_.buckets = static_cast<int64_t>(buckets_.size());
  for (size_t k = 0; k < params_.size(); ++k) {
    hooks_.push_back(params_[k].register_hook([this, k](const at::Tensor& grad) { on_gradient(k, grad); }));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < hooks_.size(); ++k) params_[k].remove_hook(hooks_[k]);
}

void GradientReducer::start_step(double share) {
  SHRINK_CHECK(share >= 0 && share <= 1, "a rank's share of the batch must be in [0, 1], got ", share);
  share_ = share;
  in_step_ = true;
  next_send_ = 0;
  std::fill(arrived_.begin(), arrived_.end(), 0);
  for (auto& b : buckets_) {
    b->flat.zero_();
    b->waiting = static_cast<int64_t>(b->params.size());
    b->pending.reset();
  }
}

void GradientReducer::on_gradient(size_t k, const at::Tensor& grad) {
  if (!in_step_) return;  // a backward outside the training step (a user's own) is not all-reduced
  SHRINK_CHECK(!grad.is_sparse(), "data-parallel training needs dense gradients; '", names_[k], "' has a sparse one");
  // A leaf's hook runs once a backward, with every path's gradient summed.
  SHRINK_CHECK(!arrived_[k], "a second gradient of '", names_[k], "' arrived in one step (a second backward?)");
  const auto& slot = slots_[k];
  auto& bucket = *buckets_[slot.bucket];
  bucket.flat.narrow(0, slot.offset, params_[k].numel()).copy_(grad.reshape(-1)).mul_(share_);
  arrived_[k] = 1;
  if (--bucket.waiting == 0 && overlap_) send_ready(/*during_backward=*/true);
}

void GradientReducer::send_ready(bool during_backward) {
  while (next_send_ < buckets_.size() && buckets_[next_send_]->waiting == 0) {
    auto& b = *buckets_[next_send_];
    b.pending = group_->start_sum(b.flat, cat("all-reduce of gradient bucket ", next_send_));
    ++next_send_;
    if (during_backward) ++stats_.sent_during_backward;
  }
}

void GradientReducer::finish_step() {
  SHRINK_CHECK(in_step_, "finish_step without start_step");
  core::Stopwatch watch;
  // Parameters this rank's backward did not reach add nothing to the sum.
  for (auto& b : buckets_) b->waiting = 0;
  send_ready(/*during_backward=*/false);
  for (auto& b : buckets_) b->pending->wait();
  for (size_t k = 0; k < params_.size(); ++k) {
    const auto& slot = slots_[k];
    auto& p = params_[k];
    const auto sum = buckets_[slot.bucket]->flat.narrow(0, slot.offset, p.numel()).view(p.sizes());
    if (p.grad().defined()) {
      p.mutable_grad().copy_(sum);
    } else {
      p.mutable_grad() = sum.clone();
    }
  }
  in_step_ = false;
  ++stats_.steps;
  stats_.waited_s += watch.seconds();
}

}  // namespace shrink::dist
