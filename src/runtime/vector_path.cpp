// Which of the reference / AVX2 / AVX-512 kernel paths this CPU has.
#include "runtime/vector_path.h"

#include "core/cpu_features.h"
#include "core/error.h"

namespace shrink::runtime {

std::string path_name(VectorPath path) {
  switch (path) {
    case VectorPath::kReference:
      return "reference";
    case VectorPath::kAvx2:
      return "avx2";
    case VectorPath::kAvx512:
      return "avx512";
  }
  return "?";
}

bool vector_path_available(VectorPath path) {
  switch (path) {
    case VectorPath::kReference:
      return true;
    case VectorPath::kAvx2:
      // Every AVX2 CPU made has FMA too; the Linear kernels use both.
      return core::cpu_has_avx2_fma();
    case VectorPath::kAvx512:
      return core::cpu_has_avx512();
  }
  return false;
}

std::vector<VectorPath> vector_paths() {
  std::vector<VectorPath> out;
  for (const auto p : {VectorPath::kAvx512, VectorPath::kAvx2, VectorPath::kReference}) {
    if (vector_path_available(p)) out.push_back(p);
  }
  return out;
}

VectorPath best_vector_path() { return vector_paths().front(); }

void check_vector_path(VectorPath path, const char* kernel) {
  SHRINK_CHECK(vector_path_available(path), kernel, ": this CPU has no ", path_name(path), " path (", core::cpu_paths(),
               ")");
}

}  // namespace shrink::runtime
