// Library example: shrink's data, model zoo, trainer and exporters from a user's own program.
// Built and run by the test suite (ctest: example.train_mlp); docs/library.md walks through it.
#include <torch/torch.h>

#include <iostream>

#include "data/synthetic.h"
#include "io/state_dict.h"
#include "models/registry.h"
#include "train/trainer.h"

using namespace shrink;

// A callback sees every step; the pruner and QAT hang on the same hooks.
struct LrLogger : train::TrainerCallback {
  void on_epoch_end(train::Trainer&, const train::EpochSummary& e) override {
    std::cout << "epoch " << e.epoch + 1 << ": val_acc " << e.val_accuracy << ", lr " << e.lr << "\n";
  }
};

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : "example_mlp.pth";
  auto all = data::make_synthetic(data::SyntheticOptions().samples(2000).classes(4).shape({1, 8, 8}).seed(1));
  auto split = data::split_validation(all, 0.2, /*seed=*/1);

  torch::manual_seed(1);
  auto model = models::build_model(models::MlpOptions().hidden({64, 32}), {{1, 8, 8}, 4});

  train::Trainer trainer(
      model, train::TrainerOptions()
                 .epochs(3)
                 .batch_size(64)
                 .optimizer(train::OptimizerOptions().name(train::OptimizerKind::kAdamW).lr(3e-3).weight_decay(0.01))
                 .schedule(train::LrScheduleOptions().name(shrink::train::LrScheduleKind::kCosine).warmup_epochs(0.5))
                 .progress(false));
  trainer.add_callback(std::make_shared<LrLogger>());
  trainer.fit(split.train, split.val);

  const auto r = train::evaluate(
      *model, [&](const at::Tensor& x) { return model->forward(x); }, split.val);
  io::save_module(out, *model);  // .pt, .pth or .h5, by extension
  std::cout << "validation accuracy " << r.accuracy << ", saved " << out << "\n";
  return r.accuracy > 0.9 ? 0 : 1;
}
