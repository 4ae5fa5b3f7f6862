// FusedSGD: the same parameters and momentum buffers as torch::optim::SGD, bit for bit, and the
// same saved state.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>
#include <vector>

#include "core/torch_compat.h"
#include "runtime/fused_sgd.h"

using shrink::runtime::FusedSGD;
namespace compat = shrink::compat;

namespace {

// Shapes with vector tails, one past the fused pass's per-thread grain, and a 4-D conv weight.
std::vector<torch::Tensor> parameters(torch::Dtype dtype = torch::kFloat) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> ps;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{300, 784}, {300}, {13}, {7, 3}, {32, 1, 3, 3}}) {
    ps.push_back(torch::randn(shape, dtype).requires_grad_(true));
  }
  return ps;
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_(true));
  return out;
}

// Five steps on both optimizers with the same gradients; the last parameter gets none on step 2.
void run_both(torch::optim::Optimizer& a, std::vector<torch::Tensor>& pa, torch::optim::Optimizer& b,
              std::vector<torch::Tensor>& pb) {
  torch::manual_seed(1);
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < pa.size(); ++i) {
      const auto g = torch::randn_like(pa[i]);
      const bool skip = step == 2 && i + 1 == pa.size();
      pa[i].mutable_grad() = skip ? torch::Tensor() : g.clone();
      pb[i].mutable_grad() = skip ? torch::Tensor() : g.clone();
    }
    a.step();
    b.step();
  }
}

void expect_same_state(const std::vector<torch::Tensor>& pa, torch::optim::Optimizer& a,
                       const std::vector<torch::Tensor>& pb, torch::optim::Optimizer& b) {
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i], pb[i]))
        << "parameter " << i << " differs by up to " << (pa[i] - pb[i]).abs().max().item<double>();
    const auto sa = a.state().find(compat::optimizer_state_key(a.state(), pa[i]));
    const auto sb = b.state().find(compat::optimizer_state_key(b.state(), pb[i]));
    ASSERT_EQ(sa == a.state().end(), sb == b.state().end()) << "parameter " << i;
    if (sa == a.state().end()) continue;
    EXPECT_TRUE(torch::equal(static_cast<torch::optim::SGDParamState&>(*sa->second).momentum_buffer(),
                             static_cast<torch::optim::SGDParamState&>(*sb->second).momentum_buffer()))
        << "momentum buffer " << i;
  }
}

void expect_matches_libtorch(const torch::optim::SGDOptions& options) {
  auto pa = parameters();
  auto pb = copies(pa);
  FusedSGD fused(pa, options);
  torch::optim::SGD plain(pb, options);
  run_both(fused, pa, plain, pb);
  EXPECT_TRUE(fused.last_step_fused());
  expect_same_state(pa, fused, pb, plain);
}

}  // namespace

TEST(FusedSgd, MomentumStepsEqualLibTorchsSgdBitForBit) {
  expect_matches_libtorch(torch::optim::SGDOptions(0.01).momentum(0.9));
}

TEST(FusedSgd, NesterovAndWeightDecayEqualLibTorchsSgdBitForBit) {
  expect_matches_libtorch(torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4));
}

TEST(FusedSgd, PlainSgdWithoutMomentumEqualsLibTorchsBitForBit) {
  expect_matches_libtorch(torch::optim::SGDOptions(0.1).weight_decay(1e-3));
}

TEST(FusedSgd, DampenedMomentumEqualsLibTorchsBitForBit) {
  expect_matches_libtorch(torch::optim::SGDOptions(0.01).momentum(0.8).dampening(0.25));
}

TEST(FusedSgd, DoubleParametersTakeLibTorchsStepWithTheSameResult) {
  auto pa = parameters(torch::kDouble);
  auto pb = copies(pa);
  const auto options = torch::optim::SGDOptions(0.01).momentum(0.9);
  FusedSGD fused(pa, options);
  torch::optim::SGD plain(pb, options);
  run_both(fused, pa, plain, pb);
  EXPECT_FALSE(fused.last_step_fused());
  expect_same_state(pa, fused, pb, plain);
}

TEST(FusedSgd, ItsSavedStateLoadsIntoLibTorchsSgdAndBack) {
  auto pa = parameters();
  auto pb = copies(pa);
  const auto options = torch::optim::SGDOptions(0.01).momentum(0.9);
  FusedSGD fused(pa, options);
  torch::optim::SGD plain(pb, options);
  run_both(fused, pa, plain, pb);

  auto pc = copies(pa);
  torch::optim::SGD loaded(pc, options);
  std::stringstream saved;
  torch::serialize::OutputArchive out;
  fused.save(out);
  out.save_to(saved);
  torch::serialize::InputArchive in;
  in.load_from(saved);
  loaded.load(in);
  expect_same_state(pa, fused, pc, loaded);
}
