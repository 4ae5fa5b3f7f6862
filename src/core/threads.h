// Intra-op thread count: LibTorch defaults to 1 thread here, shrink defaults to all cores.
#pragma once

namespace shrink::core {

int hardware_threads();
// threads <= 0 means all cores. Returns the count in effect.
int configure_threads(int threads);

}  // namespace shrink::core
