// The intra-op thread count the benchmarks run on: `shrink_bench --threads N` (0, the default: all
// cores), so one run can be timed on one thread as `shrink bench --threads 1` is.
#pragma once

namespace shrink::bench {

inline int& threads() {
  static int n = 0;
  return n;
}

}  // namespace shrink::bench
