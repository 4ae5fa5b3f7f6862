// Data-parallel gradients: each rank's gradients summed over the group in buckets, each bucket sent
// while backward still computes the next (as c10d's Reducer in DDP does), then written back.
#pragma once

#include <ATen/Tensor.h>

#include <memory>
#include <vector>

#include "dist/process_group.h"

namespace shrink::dist {

class GradientReducer {
 public:
  // `params`: the trained parameters by name, in the order the optimizer holds them; those without
  // requires_grad are left alone. Hooks stay on them until the reducer is destroyed.
  GradientReducer(std::shared_ptr<ProcessGroup> group, const NamedTensors& params);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before backward: this rank's share of the step's samples (its samples / the global batch's),
  // the weight of its mean gradient in the sum over ranks.
  void start_step(double share);
  // After backward (or instead of it, on a rank with no samples this step): sends what is not yet
  // sent, in bucket order, and writes the global batch's gradient into every parameter's grad.
  void finish_step();

  struct Stats {
    int64_t buckets = 0;
    int64_t bytes = 0;  // gradient bytes all-reduced a step
    int64_t steps = 0;
    int64_t sent_during_backward = 0;  // buckets sent before backward ended, over all steps
    double waited_s = 0;               // time in finish_step: the all-reduce backward did not hide
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Bucket;
  void on_gradient(size_t param, const at::Tensor& grad);
  void send_ready(bool during_backward);

  std::shared_ptr<ProcessGroup> group_;
  std::vector<at::Tensor> params_;
  std::vector<std::string> names_;
  std::vector<unsigned> hooks_;
  struct Slot {
    size_t bucket = 0;
    int64_t offset = 0;
  };
  std::vector<Slot> slots_;
  std::vector<char> arrived_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  size_t next_send_ = 0;  // buckets go out strictly in order, so every rank's k-th send is the same bucket
  double share_ = 1.0;
  bool in_step_ = false;
  bool overlap_ = true;
  Stats stats_;
};

}  // namespace shrink::dist
