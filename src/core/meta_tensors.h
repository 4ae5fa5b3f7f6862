// Building and running modules on LibTorch's meta device: shapes without memory, bytes counted.
#pragma once

#include <c10/core/impl/LocalDispatchKeySet.h>

#include <cstdint>

namespace shrink::core {

// While one lives, every tensor this thread creates (torch::empty in a module's constructor, a
// forward's outputs) is a meta tensor: it has a shape and no data. So a model of any size can be
// built and run to learn its parameter names, shapes and activation sizes, which is how
// validation checks a recipe against its models without spending the memory. The bytes the
// tensors would take are counted: live_bytes() now, peak_bytes() the most at once since the scope
// began or reset_peak().
//
// Tensors created before the scope keep their device; an op that mixes them with meta tensors
// gives a meta result. Ops with no meta kernel (.item(), QR) throw a c10::Error.
class MetaTensorScope {
 public:
  MetaTensorScope();
  MetaTensorScope(const MetaTensorScope&) = delete;
  MetaTensorScope& operator=(const MetaTensorScope&) = delete;

  uint64_t live_bytes() const;
  uint64_t peak_bytes() const;
  void reset_peak();

 private:
  // Factory functions pick their backend in BackendSelect from their options (CPU by default);
  // skipping it and including Meta sends them to the meta kernels. The whole thread-local key set
  // is restored after: IncludeDispatchKeyGuard's removal keeps the Meta backend bit, which would
  // send later CPU tensors to meta kernels.
  c10::impl::ForceDispatchKeyGuard keys_;
  uint64_t live_at_start_;
};

}  // namespace shrink::core
