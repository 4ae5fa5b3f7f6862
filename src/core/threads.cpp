// Applies the thread count to LibTorch's intra-op pool.
#include "core/threads.h"

#include <ATen/Parallel.h>

#include <thread>

#include "core/error.h"

namespace shrink::core {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int configure_threads(int threads) {
  if (threads < 0 || threads > kMaxThreads) {
    throw UsageError(cat("threads must be in [0, ", kMaxThreads, "] (0 = all cores), got ", threads));
  }
  const int n = threads > 0 ? threads : hardware_threads();
  if (at::get_num_threads() != n) at::set_num_threads(n);
  return at::get_num_threads();
}

}  // namespace shrink::core
