// Classifier forward pass.
#include "models/classifier.h"

#include "runtime/int8_flatten.h"

namespace shrink::models {

ClassifierImpl::ClassifierImpl(std::string arch) : arch_(std::move(arch)) {
  features = register_module("features", LayerStack());
  classifier = register_module("classifier", LayerStack());
}

at::Tensor ClassifierImpl::forward(at::Tensor x) {
  if (features->size() > 0) x = features->forward(std::move(x));
  auto y = classifier->forward(runtime::int8_flatten(x));
  // An int8 model hands back float logits, like the float model it came from.
  return y.is_quantized() ? y.dequantize() : y;
}

}  // namespace shrink::models
