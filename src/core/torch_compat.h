// The differences between LibTorch 1.13 and 2.x that shrink's code meets, in one place.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/Allocator.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <cstring>
#include <sstream>
#include <string>
#include <type_traits>

#if TORCH_VERSION_MAJOR < 2
#include <c10/util/variant.h>
#else
#include <variant>
#endif

namespace shrink::compat {

// A c10::Allocator subclass written once: allocate() is const before 2.x, and 2.3 added the pure
// virtual copy_data(). Subclasses implement allocate_bytes().
class AllocatorBase : public c10::Allocator {
 public:
  virtual at::DataPtr allocate_bytes(size_t n) = 0;
#if TORCH_VERSION_MAJOR < 2
  at::DataPtr allocate(size_t n) const override { return const_cast<AllocatorBase*>(this)->allocate_bytes(n); }
#else
  at::DataPtr allocate(size_t n) override { return allocate_bytes(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    if (count > 0) std::memcpy(dest, src, count);
  }
#endif
};

// Options variants (padding, padding_mode): c10::variant in 1.13, std::variant in 2.x.
template <class T, class Variant>
const T* get_if(const Variant& v) {
#if TORCH_VERSION_MAJOR < 2
  return c10::get_if<T>(&v);
#else
  return std::get_if<T>(&v);
#endif
}

// Autocast state per device type: LibTorch 2.4 replaced the per-device functions (is_cpu_enabled,
// set_autocast_gpu_dtype, ...) with ones that take the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline bool autocast_enabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
inline at::ScalarType autocast_dtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
inline void set_autocast(c10::DeviceType d, bool enabled, at::ScalarType dtype) {
  at::autocast::set_autocast_enabled(d, enabled);
  at::autocast::set_autocast_dtype(d, dtype);
}
#else
inline bool autocast_enabled(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}
inline at::ScalarType autocast_dtype(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
inline void set_autocast(c10::DeviceType d, bool enabled, at::ScalarType dtype) {
  if (d == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
}
#endif

// An optimizer's state map key for a parameter: 1.13 keys by the TensorImpl's address printed as
// a string, later versions by the address itself. `State` is the Optimizer's state() map.
template <class State>
typename State::key_type optimizer_state_key(const State&, const at::Tensor& param) {
  using Key = typename State::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;  // as c10::guts::to_string formats it
    key << param.unsafeGetTensorImpl();
    return key.str();
  } else {
    return static_cast<Key>(param.unsafeGetTensorImpl());
  }
}

// LibTorch's warnings as plain messages: 2.0 changed the handler's interface (a c10::Warning in
// place of location, message and flag) and moved its setter from c10::Warning to WarningUtils.
class WarningHandler : public c10::WarningHandler {
 public:
  virtual void handle(const std::string& message) = 0;
#if TORCH_VERSION_MAJOR < 2
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override { handle(msg); }
#else
  void process(const c10::Warning& warning) override { handle(warning.msg()); }
#endif
};

inline void set_warning_handler(c10::WarningHandler* handler) {
#if TORCH_VERSION_MAJOR < 2
  c10::Warning::set_warning_handler(handler);
#else
  c10::WarningUtils::set_warning_handler(handler);
#endif
}

// Stops a c10d backend's threads before it is destroyed: 2.x's NCCL backend warns and aborts its
// communicators when destroyed without shutdown(); 1.13's has no shutdown().
template <class Backend>
void shutdown_backend(Backend& backend) {
#if TORCH_VERSION_MAJOR >= 2
  backend.shutdown();
#else
  (void)backend;
#endif
}

}  // namespace shrink::compat
