// Conv2d options → explicit geometry ('same' and 'valid' padding resolved).
#include "runtime/conv2d_geometry.h"

#include "core/error.h"
#include "core/torch_compat.h"

namespace shrink::runtime {

using core::cat;

Conv2dGeometry geometry_of(const torch::nn::Conv2dImpl& conv) {
  const auto& o = conv.options;
  if (torch::enumtype::get_enum_name(o.padding_mode()) != "kZeros") {
    throw core::UsageError(
        cat("an int8 Conv2d needs zero padding, got padding mode ", torch::enumtype::get_enum_name(o.padding_mode())));
  }
  const auto vec = [](const torch::ExpandingArray<2>& a) { return std::vector<int64_t>(a->begin(), a->end()); };
  Conv2dGeometry g;
  if (const auto* explicit_padding = compat::get_if<torch::ExpandingArray<2>>(o.padding())) {
    g.padding = vec(*explicit_padding);
  } else if (compat::get_if<torch::enumtype::kValid>(o.padding())) {
    g.padding = {0, 0};
  } else {
    // 'same' (stride 1): total padding dilation × (kernel − 1) per side pair, symmetric when even.
    for (int d = 0; d < 2; ++d) {
      const int64_t total = (*o.dilation())[d] * ((*o.kernel_size())[d] - 1);
      SHRINK_CHECK(total % 2 == 0, "an int8 Conv2d needs symmetric padding ('same' with an even kernel is not)");
      g.padding.push_back(total / 2);
    }
  }
  g.in_channels = o.in_channels();
  g.out_channels = o.out_channels();
  g.groups = o.groups();
  g.kernel = vec(o.kernel_size());
  g.stride = vec(o.stride());
  g.dilation = vec(o.dilation());
  return g;
}

}  // namespace shrink::runtime
