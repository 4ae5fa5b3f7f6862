// Shared training fixtures: the small, seeded Trainer settings the unit tests train with, and a
// callback that simulates a process killed partway through a run, and a counter of item() calls.
#pragma once

#include <ATen/record_function.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "core/cpu_features.h"
#include "data/synthetic.h"
#include "models/zoo.h"
#include "train/trainer.h"

namespace shrink::testing {

// The MLP most unit tests train: 1x8x8 inputs, hidden layers of 32 and 16, 4 classes.
inline models::Classifier tiny_mlp(uint64_t seed) {
  torch::manual_seed(seed);
  return models::build_model(models::MlpOptions().hidden({32, 16}), {{1, 8, 8}, 4});
}

// `n` seeded samples for tiny_mlp: 1x8x8 inputs, 4 classes; `stream` draws a disjoint split.
inline data::Dataset tiny_data(int64_t n, uint64_t stream = 0) {
  return data::make_synthetic(data::SyntheticOptions().samples(n).classes(4).shape({1, 8, 8}).seed(3), stream);
}

// Whether this CPU path trains in bf16 (train::check_precision refuses it below AVX-512).
inline bool cpu_bf16_available() { return core::cpu_has_avx512(); }

// SGD (lr 0.05, momentum 0.9), batch 32, seed 5, no progress output.
inline train::TrainerOptions small_training(int64_t epochs) {
  return train::TrainerOptions()
      .epochs(epochs)
      .batch_size(32)
      .optimizer(train::OptimizerOptions().name(train::OptimizerKind::kSgd).lr(0.05).momentum(0.9))
      .seed(5)
      .progress(false);
}

// Throws at the first step of epoch `epoch`, as a kill would stop the run there.
struct KillAtEpoch : train::TrainerCallback {
  explicit KillAtEpoch(int64_t epoch) : epoch(epoch) {}
  void on_step_begin(train::Trainer&, const train::StepInfo& s) override {
    if (s.epoch == epoch) throw std::runtime_error("killed");
  }
  int64_t epoch;
};

// Counts the item() calls shrink's own code makes while it lives (each a host sync on a GPU):
// aten::item (or aten::_local_scalar_dense) called outside any other ATen op. Calls that ATen's CPU
// kernels make inside their ops (the CPU fake-quantize kernel reads its scale that way) are not
// syncs the CUDA kernels make, and are not counted.
class ItemCounter {
 public:
  ItemCounter() {
    count() = 0;
    auto callback = at::RecordFunctionCallback(
        [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          if (depth()++ == 0 &&
              (std::strcmp(fn.name(), "aten::item") == 0 || std::strcmp(fn.name(), "aten::_local_scalar_dense") == 0)) {
            ++count();
          }
          return nullptr;
        },
        [](const at::RecordFunction&, at::ObserverContext*) { --depth(); });
    handle_ = at::addGlobalCallback(callback.scopes({at::RecordScope::FUNCTION}));
  }
  ~ItemCounter() { at::removeCallback(handle_); }
  int64_t calls() const { return count(); }

 private:
  static std::atomic<int64_t>& count() {
    static std::atomic<int64_t> n{0};  // one counter: callbacks are plain function pointers
    return n;
  }
  static int& depth() {
    static thread_local int d = 0;  // ATen ops open on this thread and not yet closed
    return d;
  }
  at::CallbackHandle handle_;
};

}  // namespace shrink::testing
