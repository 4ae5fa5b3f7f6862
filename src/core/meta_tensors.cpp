// The meta scope's dispatch guards and the counting allocator behind meta tensors.
#include "core/meta_tensors.h"

#include <ATen/ATen.h>
#include <c10/core/Allocator.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "core/torch_compat.h"

namespace shrink::core {

namespace {

// Meta tensors get their (empty) storage from the allocator registered for the meta device;
// shrink registers one that hands out no memory either but keeps the byte counts. Counts are
// process-wide: meta tensors are shrink's own, made inside MetaTensorScopes.
std::atomic<uint64_t> g_live{0};
std::atomic<uint64_t> g_peak{0};

void release(void* context) { g_live -= static_cast<uint64_t>(reinterpret_cast<uintptr_t>(context)); }

class CountingMetaAllocator final : public compat::AllocatorBase {
 public:
  at::DataPtr allocate_bytes(size_t n) override {
    const uint64_t live = g_live += n;
    uint64_t peak = g_peak.load();
    while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
    }
    // The context carries the size back to release(); a null context (n == 0) is never released.
    return {nullptr, reinterpret_cast<void*>(static_cast<uintptr_t>(n)), &release, c10::Device(c10::DeviceType::Meta)};
  }
};

void install_counting_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    static CountingMetaAllocator allocator;
    // Priority 1 outranks LibTorch's own meta allocator (registered at 0).
    c10::SetAllocator(c10::DeviceType::Meta, &allocator, 1);
  });
}

c10::impl::LocalDispatchKeySet meta_keys() {
  auto keys = c10::impl::tls_local_dispatch_key_set();
  keys.included_ = keys.included_ | c10::DispatchKeySet(c10::DispatchKey::Meta);
  keys.excluded_ = keys.excluded_ | c10::DispatchKeySet(c10::DispatchKey::BackendSelect);
  return keys;
}

uint64_t live_now() {
  install_counting_allocator();
  return g_live.load();
}

// LibTorch's meta kernels cover most ops, and Python adds the rest in Python; three that shrink's
// models run have none in C++ (1.13 to 2.15): these give their output shapes, checking what the
// CPU kernels check about them.
at::Tensor relu_meta(const at::Tensor& self) { return at::empty_like(self); }

at::Tensor convolution_meta(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                            at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                            at::IntArrayRef output_padding, int64_t groups) {
  const int64_t spatial = input.dim() - 2;
  TORCH_CHECK(spatial >= 1 && weight.dim() == input.dim(), "convolution: expected input and weight of the same rank ",
              "(at least 3), got ", input.sizes(), " and ", weight.sizes());
  TORCH_CHECK(groups >= 1, "convolution: groups must be positive, got ", groups);
  const int64_t in_channels = transposed ? weight.size(0) : weight.size(1) * groups;
  TORCH_CHECK(input.size(1) == in_channels, "convolution: weight of size ", weight.sizes(), " expects ", in_channels,
              " input channels, but the input has size ", input.sizes());
  const auto at = [](at::IntArrayRef v, int64_t i) { return v.size() == 1 ? v[0] : v[i]; };
  std::vector<int64_t> out = {input.size(0), transposed ? weight.size(1) * groups : weight.size(0)};
  for (int64_t d = 0; d < spatial; ++d) {
    const int64_t in = input.size(d + 2);
    const int64_t k = weight.size(d + 2);
    const int64_t size = transposed ? (in - 1) * at(stride, d) - 2 * at(padding, d) + at(dilation, d) * (k - 1) +
                                          at(output_padding, d) + 1
                                    : (in + 2 * at(padding, d) - at(dilation, d) * (k - 1) - 1) / at(stride, d) + 1;
    TORCH_CHECK(size > 0, "convolution: input of size ", input.sizes(), " with kernel ", weight.sizes(),
                " gives an output size of ", size, " (too small)");
    out.push_back(size);
  }
  return at::empty(out, input.options());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> batch_norm_meta(
    const at::Tensor& input, const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&,
    const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&, bool training, double, double) {
  TORCH_CHECK(input.dim() >= 2, "batch_norm: expected an input with at least 2 dimensions, got ", input.sizes());
  const int64_t stats = training ? input.size(1) : 0;
  return {at::empty_like(input), at::empty({stats}, input.options()), at::empty({stats}, input.options())};
}

TORCH_LIBRARY_IMPL(aten, Meta, m) {
  m.impl("relu", relu_meta);
  m.impl("convolution_overrideable", convolution_meta);
  m.impl("native_batch_norm", batch_norm_meta);
}

}  // namespace

MetaTensorScope::MetaTensorScope() : keys_(meta_keys()), live_at_start_(live_now()) { reset_peak(); }

uint64_t MetaTensorScope::live_bytes() const {
  const uint64_t live = g_live.load();
  return live > live_at_start_ ? live - live_at_start_ : 0;
}

uint64_t MetaTensorScope::peak_bytes() const {
  const uint64_t peak = g_peak.load();
  return peak > live_at_start_ ? peak - live_at_start_ : 0;
}

void MetaTensorScope::reset_peak() { g_peak = g_live.load(); }

}  // namespace shrink::core
