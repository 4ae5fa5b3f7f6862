// Walks a model's modules and sets the kernel choice on each int8 layer.
#include "compress/quantize/int8_kernel_choice.h"

#include "compress/quantize/int8_layer.h"
#include "models/residual_add.h"

namespace shrink::compress::quantize {

int64_t set_int8_kernels(torch::nn::Module& model, runtime::Int8Kernels kernels) {
  int64_t count = 0;
  for (const auto& m : model.modules(/*include_self=*/true)) {
    if (auto* layer = dynamic_cast<Int8LayerImpl*>(m.get())) {
      layer->set_kernels(kernels);
      ++count;
    } else if (auto* add = dynamic_cast<models::ResidualAddImpl*>(m.get()); add && add->is_int8()) {
      add->set_kernels(kernels);
      ++count;
    }
  }
  return count;
}

}  // namespace shrink::compress::quantize
