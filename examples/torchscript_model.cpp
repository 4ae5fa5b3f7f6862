// Library example: compress a TorchScript model — one saved in Python by torch.jit.script or
// torch.jit.trace — in C++: train and prune it with shrink's Trainer and L1Pruner, then hand it back
// as TorchScript (torch.jit.load runs it) and as a state_dict. Built and run by the test suite
// (ctest: example.torchscript_model), which lets it write its own small scripted module.
#include <torch/script.h>
#include <torch/torch.h>

#include <iostream>

#include "compress/prune/l1_pruner.h"
#include "data/synthetic.h"
#include "io/state_dict.h"
#include "models/torchscript.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
namespace prune = shrink::compress::prune;

// Stands in for the file a PyTorch user brings: a two-layer network defined in TorchScript.
void write_scripted_net(const fs::path& file) {
  torch::jit::Module net("Net");
  net.register_parameter("hidden_weight", (torch::randn({64, 32}) * 0.1).requires_grad_(), false);
  net.register_parameter("out_weight", (torch::randn({32, 4}) * 0.1).requires_grad_(), false);
  net.define(
      "def forward(self, x):\n    return torch.relu(torch.flatten(x, 1) @ self.hidden_weight) @ self.out_weight\n");
  net.save(file.string());
}

int main(int argc, char** argv) {
  const fs::path dir = argc > 1 ? argv[1] : "torchscript_example";
  fs::create_directories(dir);
  const fs::path brought = argc > 2 ? fs::path(argv[2]) : dir / "net.ts";
  torch::manual_seed(0);
  if (argc <= 2) write_scripted_net(brought);

  // 1. TorchScript is code: loading it is an explicit decision.
  shrink::models::allow_torchscript(true);
  auto model = shrink::models::from_torchscript(brought);

  // 2. It trains and prunes like any module: its parameters are the scripted module's own tensors.
  auto data = shrink::data::make_synthetic(shrink::data::SyntheticOptions().samples(2048).classes(4).seed(0));
  auto pruner = std::make_shared<prune::L1Pruner>(model.module, prune::PruneOptions().sparsity(0.8));
  shrink::train::Trainer trainer(model.module, model.forward,
                                 shrink::train::TrainerOptions().epochs(4).batch_size(64).optimizer(
                                     shrink::train::OptimizerOptions().lr(0.05).momentum(0.9)));
  trainer.add_modifier(pruner);
  const auto result = trainer.fit(data);

  // 3. Back to PyTorch: TorchScript with the pruned weights, and a state_dict under the module's names.
  auto* scripted = shrink::models::as_torchscript(model);
  shrink::models::save_torchscript(*scripted, dir / "net_pruned.ts");
  shrink::io::save_module(dir / "net_pruned.pth", *model.module);

  auto again = torch::jit::load((dir / "net_pruned.ts").string());
  const auto x = data.inputs.narrow(0, 0, 256);
  torch::NoGradGuard no_grad;
  model.module->eval();
  const double diff = (again.forward({x}).toTensor() - model.forward(x)).abs().max().item<double>();
  const double acc = model.forward(data.inputs).argmax(1).eq(data.targets).to(torch::kFloat).mean().item<double>();
  std::cout << "sparsity " << pruner->sparsity() << ", train accuracy " << acc << ", reloaded max |diff| " << diff
            << " (" << result.epochs.size() << " epochs)\n";
  return pruner->sparsity() > 0.79 && acc > 0.8 && diff < 1e-5 ? 0 : 1;
}
