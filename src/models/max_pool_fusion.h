// The interface of a layer that can run itself and the 2x2 max pooling after it in one pass.
#pragma once

#include <ATen/core/Tensor.h>

namespace shrink::models {

// Implemented by an int8 convolution, which pools its sums before requantizing them. A layer stack
// calls it in place of the layer and a 2x2, stride-2 max pooling that follows it (past Identity
// layers only): the same values as the two layers give one after the other. An undefined result
// means the layer will not here (LibTorch's kernel runs it, the output is under 2x2), and the
// stack runs the layers one by one.
class MaxPoolFusion {
 public:
  virtual ~MaxPoolFusion() = default;
  virtual at::Tensor forward_max_pool2x2(const at::Tensor& x) = 0;
};

}  // namespace shrink::models
