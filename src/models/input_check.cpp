// One-sample forward that turns a shape mismatch into a message naming the model and the data.
#include "models/input_check.h"

#include <torch/types.h>
#include <torch/utils.h>

#include "core/error.h"
#include "core/format.h"

namespace shrink::models {

void check_takes_samples(const Model& model, const std::vector<int64_t>& sample_shape, const c10::Device& device,
                         const std::string& what) {
  std::vector<int64_t> dims = {1};
  dims.insert(dims.end(), sample_shape.begin(), sample_shape.end());
  try {
    torch::NoGradGuard no_grad;
    model.forward(torch::zeros(dims, torch::TensorOptions().device(device)));
  } catch (const c10::Error& e) {
    std::vector<std::string> shape;
    for (int64_t d : sample_shape) shape.push_back(std::to_string(d));
    const std::string why = e.what_without_backtrace();
    throw core::UsageError(core::cat(what, ": the model does not take the data's samples of shape [", core::join(shape),
                                     "]: ", why.substr(0, why.find('\n')),
                                     " (is it the data the model was trained on?)"));
  }
}

}  // namespace shrink::models
