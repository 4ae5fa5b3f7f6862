// The differences between LibTorch 1.13 and 2.x that shrink's code meets, in one place.
#pragma once

#include <torch/version.h>

#if TORCH_VERSION_MAJOR < 2
#include <c10/util/variant.h>
#else
#include <variant>
#endif

namespace shrink::compat {

// Options variants (padding, padding_mode): c10::variant in 1.13, std::variant in 2.x.
template <class T, class Variant>
const T* get_if(const Variant& v) {
#if TORCH_VERSION_MAJOR < 2
  return c10::get_if<T>(&v);
#else
  return std::get_if<T>(&v);
#endif
}

}  // namespace shrink::compat
