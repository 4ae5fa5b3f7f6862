// Whether a model takes the data it is given, asked before a loop over the data.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/model.h"

namespace shrink::models {

// Runs the model on one placeholder sample (models::placeholder_input) of `sample_shape` on `device`; a failure becomes
// a UsageError naming `what` (the file), the data's sample shape and LibTorch's reason, instead of a bare "mat1 and
// mat2 shapes cannot be multiplied" from the middle of an evaluation.
void check_takes_samples(const Model& model, const std::vector<int64_t>& sample_shape, const c10::Device& device,
                         const std::string& what);

}  // namespace shrink::models
