// One-sample forward that turns a shape mismatch into a message naming the model and the data.
#include "models/input_check.h"

#include <torch/types.h>
#include <torch/utils.h>

#include "core/error.h"
#include "core/format.h"

namespace shrink::models {

void check_takes_samples(const Model& model, const std::vector<int64_t>& sample_shape, const c10::Device& device,
                         const std::string& what) {
  try {
    torch::NoGradGuard no_grad;
    model.forward(placeholder_input(model, batch_shape(1, sample_shape), device));
  } catch (const c10::Error& e) {
    const std::string why = e.what_without_backtrace();
    throw core::UsageError(core::cat(what, ": the model does not take the data's samples of shape ",
                                     c10::IntArrayRef(sample_shape), ": ", why.substr(0, why.find('\n')),
                                     " (is it the data the model was trained on?)"));
  }
}

}  // namespace shrink::models
