// Which int8 kernel paths this CPU has, from core::cpu_features (and its cap).
#include "runtime/int8_path.h"

#include "core/cpu_features.h"

namespace shrink::runtime {

bool int8_path_available(Int8Path path) {
  switch (path) {
    case Int8Path::kReference:
      return true;
    case Int8Path::kAvx2:
      return core::cpu_has_avx2();
    case Int8Path::kAvxVnni:
      return core::cpu_has_avx_vnni();
    case Int8Path::kAvx512Vnni:
      return core::cpu_has_avx512_vnni();
  }
  return false;
}

Int8Path best_int8_path() {
  for (const auto path : {Int8Path::kAvx512Vnni, Int8Path::kAvxVnni, Int8Path::kAvx2}) {
    if (int8_path_available(path)) return path;
  }
  return Int8Path::kReference;
}

const char* int8_path_name(Int8Path path) {
  switch (path) {
    case Int8Path::kReference:
      return "reference";
    case Int8Path::kAvx2:
      return "avx2";
    case Int8Path::kAvxVnni:
      return "avx_vnni";
    case Int8Path::kAvx512Vnni:
      return "avx512_vnni";
  }
  return "?";
}

}  // namespace shrink::runtime
