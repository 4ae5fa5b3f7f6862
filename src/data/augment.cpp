// Augmentation: draws per sample on the CPU generator, then one padded gather per batch.
#include "data/augment.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace shrink::data {

using core::cat;

const config::OptionsSpec<AugmentOptions>& augment_spec() {
  using O = AugmentOptions;
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, hflip, config::boolean(), "mirror left-right, each sample with probability 1/2"),
       SHRINK_OPTION(O, shift, config::integer(0, 16), "translate up to this many pixels each way")});
  return spec;
}

void validate(const AugmentOptions& o) { augment_spec().check(o, "augment"); }

at::Tensor augment_sample(const at::Tensor& image, bool flip, int64_t dy, int64_t dx) {
  SHRINK_CHECK(image.dim() == 3, "augment needs a sample [C, H, W], got ", image.sizes());
  const auto src = flip ? image.flip({2}) : image;
  const int64_t h = image.size(1), w = image.size(2);
  auto out = at::zeros_like(image);
  if (std::abs(dy) >= h || std::abs(dx) >= w) return out;
  out.narrow(1, std::max<int64_t>(dy, 0), h - std::abs(dy))
      .narrow(2, std::max<int64_t>(dx, 0), w - std::abs(dx))
      .copy_(src.narrow(1, std::max<int64_t>(-dy, 0), h - std::abs(dy))
                 .narrow(2, std::max<int64_t>(-dx, 0), w - std::abs(dx)));
  return out;
}

at::Tensor augment_batch(const at::Tensor& images, const AugmentOptions& o, at::Generator generator) {
  validate(o);
  if (images.dim() != 4) {
    throw core::UsageError(
        cat("augment needs image samples [C, H, W]; this data's samples are ", images.sizes().slice(1)));
  }
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3), s = o.shift();
  const auto cpu_long = at::TensorOptions().dtype(at::kLong);
  // Draw order is fixed (flips, then dy, then dx) so a batch's augmentation depends on its seed only.
  const auto flip = o.hflip() ? at::randint(0, 2, {n}, generator, cpu_long) : at::zeros({n}, cpu_long);
  const auto dy = s > 0 ? at::randint(-s, s + 1, {n}, generator, cpu_long) : at::zeros({n}, cpu_long);
  const auto dx = s > 0 ? at::randint(-s, s + 1, {n}, generator, cpu_long) : at::zeros({n}, cpu_long);
  // Output pixel (y, x) of sample i reads padded input (y - dy + s, x' - dx + s), where x' is x
  // mirrored for flipped samples: one gather over a zero-padded copy.
  const auto padded = at::constant_pad_nd(images, {s, s, s, s}, 0);              // [N, C, H + 2s, W + 2s]
  const auto ys = at::arange(h, cpu_long).unsqueeze(0) - dy.unsqueeze(1) + s;    // [N, H]
  const auto xs_plain = at::arange(w, cpu_long).unsqueeze(0) - dx.unsqueeze(1);  // [N, W]
  // Mirroring then shifting: out(y, x) = in(y - dy, W - 1 - (x - dx)).
  const auto xs = at::where(flip.unsqueeze(1).to(at::kBool), (w - 1) - xs_plain, xs_plain) + s;
  const auto dev = images.device();
  const auto c = images.size(1);
  const auto row_index = ys.to(dev).view({n, 1, h, 1}).expand({n, c, h, w + 2 * s});
  const auto rows = padded.gather(2, row_index);  // [N, C, H, W + 2s]
  const auto col_index = xs.to(dev).view({n, 1, 1, w}).expand({n, c, h, w});
  return rows.gather(3, col_index);
}

}  // namespace shrink::data
