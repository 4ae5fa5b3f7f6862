// Intra-op thread count: LibTorch defaults to 1 thread here, shrink defaults to all cores.
#pragma once

namespace shrink::core {

int hardware_threads();
// The most intra-op threads shrink accepts (the recipe key's bound too): far past any core count,
// short of what makes thread creation hang.
inline constexpr int kMaxThreads = 1024;
// threads == 0 means all cores. Returns the count in effect. A UsageError names a value outside
// [0, kMaxThreads].
int configure_threads(int threads);

}  // namespace shrink::core
