// A built model as shrink handles it: any torch::nn::Module plus the function that runs it, and
// what the data dictates about its shape.
#pragma once

#include <ATen/Functions.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace shrink::models {

// Logits from a batch of inputs.
using ForwardFn = std::function<at::Tensor(const at::Tensor&)>;

// What the data dictates: the sample shape (without batch) and the number of classes.
struct ModelInput {
  std::vector<int64_t> shape;
  int64_t num_classes = 10;
};

// The shape of `batch` samples of `sample_shape`: {batch, sample_shape...}.
inline std::vector<int64_t> batch_shape(int64_t batch, const std::vector<int64_t>& sample_shape) {
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  return shape;
}

struct Model {
  std::shared_ptr<torch::nn::Module> module;
  ForwardFn forward;  // logits from a batch of inputs
  // What its inputs hold: float samples, or int64 token ids (a text encoder's).
  at::ScalarType input_dtype = at::kFloat;
  // Token ids only: the id that marks padding, which token-level losses leave out; -1 = none.
  int64_t pad_token_id = -1;
};

// A stand-in batch for probes and timings (shape, cost, latency): float zeros, or for a model of
// token ids, ones — a real token everywhere, so no position is padding and every token counts.
inline at::Tensor placeholder_input(const Model& model, const std::vector<int64_t>& shape,
                                    const c10::Device& device = c10::kCPU) {
  const auto options = at::TensorOptions().device(device);
  return model.input_dtype == at::kLong ? at::ones(shape, options.dtype(at::kLong))
                                        : at::zeros(shape, options.dtype(at::kFloat));
}

inline Model to_model(Model m) { return m; }

// Any module holder with a forward(Tensor) (torch::nn::Linear, Classifier, a user's TORCH_MODULE).
template <class Holder>
Model to_model(Holder holder) {
  auto module = holder.ptr();
  return Model{module, [holder](const at::Tensor& x) mutable { return holder->forward(x); }};
}

}  // namespace shrink::models
