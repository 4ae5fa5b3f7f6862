// The int8 residual add: dequantize both sides, add, requantize as every shrink int8 kernel does.
#include "runtime/int8_add.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "runtime/quantize_row.h"

namespace shrink::runtime {

void int8_add(const uint8_t* a, const uint8_t* b, int64_t n, const Int8AddParams& p, uint8_t* out) {
  const float inv_out = 1.0f / p.out_scale;
  // Enough values a task to be worth a thread.
  at::parallel_for(0, n, int64_t{1} << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float y = p.a_scale * static_cast<float>(static_cast<int32_t>(a[i]) - p.a_zero_point) +
                      p.b_scale * static_cast<float>(static_cast<int32_t>(b[i]) - p.b_zero_point);
      out[i] = quantize_u8(p.relu ? std::max(y, 0.0f) : y, inv_out, p.out_zero_point);
    }
  });
}

}  // namespace shrink::runtime
