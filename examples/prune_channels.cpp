// Library example: channel pruning of your own convnet in your own loop — half of every conv's and
// hidden Linear's output channels, ranked by the L1 norm of their filters, masked while it
// fine-tunes, then removed: a smaller dense model. Hold the layers in a LayerStack (nn::Flatten
// included) so the pruner can follow channels from each layer to the one that reads them. Built and
// run by the test suite (ctest: example.prune_channels); docs/pruning.md walks through it.
#include <torch/torch.h>

#include <iostream>

#include "compress/prune/l1_pruner.h"
#include "data/synthetic.h"
#include "io/state_dict.h"
#include "models/layer_stack.h"

namespace nn = torch::nn;
namespace prune = shrink::compress::prune;
using shrink::models::LayerStack;

LayerStack make_net() {
  LayerStack net;
  net->push_back(nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1).bias(false)));
  net->push_back(nn::BatchNorm2d(16));
  net->push_back(nn::ReLU());
  net->push_back(nn::MaxPool2d(2));
  net->push_back(nn::Conv2d(nn::Conv2dOptions(16, 32, 3).padding(1).bias(false)));
  net->push_back(nn::BatchNorm2d(32));
  net->push_back(nn::ReLU());
  net->push_back(nn::MaxPool2d(2));
  net->push_back(nn::Flatten());
  net->push_back(nn::Linear(32 * 3 * 3, 64));
  net->push_back(nn::ReLU());
  net->push_back(nn::Linear(64, 4));
  return net;
}

double accuracy(LayerStack& net, const shrink::data::Dataset& d) {
  torch::NoGradGuard no_grad;
  net->eval();
  return net->forward(d.inputs).argmax(1).eq(d.targets).to(torch::kFloat).mean().item<double>();
}

int64_t count(const nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : "channel_pruned.h5";
  torch::manual_seed(0);
  const auto all = shrink::data::make_synthetic(
      shrink::data::SyntheticOptions().samples(4096).classes(4).shape({1, 12, 12}).noise(3.0).seed(0));
  const auto train_set = all.head(3072), test_set = all.select(torch::arange(3072, 4096));
  auto net = make_net();
  const int64_t batch = 64, steps_per_epoch = train_set.size() / batch;
  const auto train = [&](int epochs, double lr, prune::L1Pruner* pruner) {
    torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(lr).momentum(0.9));
    for (int64_t step = 0; step < epochs * steps_per_epoch; ++step) {
      const int64_t i = step % steps_per_epoch;
      if (pruner) pruner->step(step, steps_per_epoch);  // prunes when the schedule says so
      net->train();
      opt.zero_grad();
      nn::functional::cross_entropy(net->forward(train_set.inputs.narrow(0, i * batch, batch)),
                                    train_set.targets.narrow(0, i * batch, batch))
          .backward();
      opt.step();
      if (pruner) pruner->apply_masks();  // pruned channels stay exactly zero
    }
  };
  train(4, 0.02, nullptr);
  const double dense = accuracy(net, test_set);
  const int64_t dense_params = count(*net);

  // 1. Half the output channels of every layer whose channels can go, in two rounds.
  prune::L1Pruner pruner(
      net.ptr(),
      prune::PruneOptions()
          .structure(prune::PruneStructure::kChannels)
          .sparsity(0.5)
          .schedule(prune::PruneScheduleOptions().kind(prune::PruneScheduleKind::kIterative).rounds(2).end_epoch(2)));
  for (const auto& s : pruner.skipped_layers()) std::cout << "left whole: " << s.layer << " (" << s.reason << ")\n";
  // 2. Fine-tune with the masks held.
  train(10, 0.02, &pruner);
  // 3. Remove them: every layer is rebuilt smaller, the logits unchanged.
  pruner.remove_pruned_channels();
  const double pruned = accuracy(net, test_set);
  std::cout << "accuracy " << dense << " dense, " << pruned << " with half the channels; parameters " << dense_params
            << " -> " << count(*net) << "\n";
  for (const auto& l : pruner.layers())
    std::cout << "  " << l.name << ": " << l.channels << " -> " << l.kept_channels << " channels\n";
  shrink::io::save_module(out, *net);

  // 4. A fresh net takes the file once its layers have the kept channels' sizes.
  auto fresh = make_net();
  prune::remove_channels(*fresh, pruner.kept_channels());
  shrink::io::load_state_dict(*fresh, shrink::io::load_state_dict_file(out), out);
  const bool same = accuracy(fresh, test_set) == pruned;
  std::cout << "reloaded: " << (same ? "same accuracy" : "DIFFERENT accuracy") << "\n";
  // Training's rounding follows the CPU's kernels, so the pruned accuracy moves by a point or two
  // between CPUs (−2.3 pt on an AMD EPYC, Zen 4): the check leaves room for that, not for a net
  // that stopped learning (chance is 0.25).
  return same && count(*net) < dense_params / 3 && pruned > dense - 0.05 ? 0 : 1;
}
