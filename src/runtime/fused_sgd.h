// SGD whose update runs as one pass per parameter: LibTorch's SGD makes three (weight decay aside),
// each a separate op over the weights, gradients and momentum buffers. Same state, same
// checkpoints, and bit-identical parameters to torch::optim::SGD (tests/test_fused_sgd.cpp).
#pragma once

#include <torch/optim/sgd.h>

#include <vector>

namespace shrink::runtime {

class FusedSGD : public torch::optim::SGD {
 public:
  FusedSGD(std::vector<at::Tensor> params, torch::optim::SGDOptions options);

  // The fused pass where every parameter with a gradient is a dense contiguous CPU float tensor
  // (gradient and buffer alike) and the CPU has FMA; torch::optim::SGD::step otherwise.
  at::Tensor step(LossClosure closure = nullptr) override;

  // Whether the last step took the fused pass.
  bool last_step_fused() const { return last_fused_; }

 private:
  bool last_fused_ = false;
};

}  // namespace shrink::runtime
