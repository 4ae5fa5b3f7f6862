// Random augmentation of image batches for training (mirror, shift), drawn from a seeded
// generator so that (seed, epoch, batch) always gives the same images and resumed runs replay them.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>

#include "config/options_spec.h"

namespace shrink::data {

struct AugmentOptions {
  bool enabled() const { return hflip_ || shift_ > 0; }
  TORCH_ARG(bool, hflip) = false;  // mirror left-right, each sample with probability 1/2
  TORCH_ARG(int64_t, shift) = 0;   // translate each sample by up to this many pixels each way, zero fill
};

// The recipe keys of AugmentOptions (`augment:`).
const config::OptionsSpec<AugmentOptions>& augment_spec();
void validate(const AugmentOptions& options);

// One sample [C, H, W], mirrored when `flip`, then moved down `dy` and right `dx` pixels (negative:
// up, left) with zeros where nothing moved in: the plain reference the batched path is tested against.
at::Tensor augment_sample(const at::Tensor& image, bool flip, int64_t dy, int64_t dx);

// A batch [N, C, H, W], each sample with its own draw from `generator`; a new tensor.
at::Tensor augment_batch(const at::Tensor& images, const AugmentOptions& options, at::Generator generator);

}  // namespace shrink::data
