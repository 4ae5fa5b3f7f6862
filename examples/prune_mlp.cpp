// Library example: gradual (AGP) magnitude pruning inside your own training loop — no recipe,
// no shrink Trainer, just the pruner and a handful of calls. Built and run by the test suite
// (ctest: example.prune_mlp); docs/pruning.md walks through it.
#include <torch/torch.h>

#include <iostream>

#include "compress/prune/l1_pruner.h"
#include "data/synthetic.h"
#include "io/state_dict.h"

namespace prune = shrink::compress::prune;

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : "pruned_mlp.h5";
  torch::manual_seed(0);
  auto data =
      shrink::data::make_synthetic(shrink::data::SyntheticOptions().samples(4096).classes(10).shape({64}).seed(0));
  auto net = torch::nn::Sequential(torch::nn::Linear(64, 256), torch::nn::ReLU(), torch::nn::Linear(256, 10));
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));

  // 1. Say what to prune and how: 90 % of each weight matrix, AGP over epochs 1..6, every 20 steps.
  prune::L1Pruner pruner(net.ptr(), prune::PruneOptions().sparsity(0.9).schedule(
                                        prune::PruneScheduleOptions()
                                            .kind(shrink::compress::prune::PruneScheduleKind::kAgp)
                                            .start_epoch(1)
                                            .end_epoch(6)
                                            .frequency(20)));

  const int64_t batch = 64, steps_per_epoch = data.size() / batch;
  int64_t step = 0;
  for (int epoch = 0; epoch < 8; ++epoch) {
    for (int64_t i = 0; i < steps_per_epoch; ++i, ++step) {
      pruner.step(step, steps_per_epoch);  // 2. updates the masks when the schedule says so
      auto x = data.inputs.narrow(0, i * batch, batch), y = data.targets.narrow(0, i * batch, batch);
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
      loss.backward();
      opt.step();
      pruner.apply_masks();  // 3. keeps pruned weights at exactly zero after every update
    }
  }
  const auto acc = net->forward(data.inputs).argmax(1).eq(data.targets).to(torch::kFloat).mean().item<double>();
  std::cout << "sparsity " << pruner.sparsity() << ", train accuracy " << acc << "\n";
  for (const auto& l : pruner.layers()) std::cout << "  " << l.name << ": " << l.sparsity << "\n";
  shrink::io::save_module(out, *net);  // 4. pruned tensors are stored compressed in .h5 and .pt
  return pruner.sparsity() > 0.89 && acc > 0.9 ? 0 : 1;
}
