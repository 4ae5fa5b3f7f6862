// What the benchmarks that alternate two versions call by call share: the loop that times both
// inside Google Benchmark's iterations and reports their medians and ratio, with runtime/timing.h's
// clock and median (the ones behind every latency shrink reports).
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runtime/timing.h"

namespace shrink::bench {

using runtime::median;

// Runs `ours` then `theirs` once each per benchmark iteration, after one warm-up call of each.
// Counters: `<ours_name>_<unit>` and `<theirs_name>_<unit>`, the medians in `unit` ("ms" or "us"),
// and `speedup`, theirs over ours.
template <class Ours, class Theirs>
void time_alternately(benchmark::State& state, const std::string& ours_name, Ours ours, const std::string& theirs_name,
                      Theirs theirs, const std::string& unit) {
  const double scale = unit == "ms" ? 1e3 : 1e6;
  const auto time = [&](auto& fn) { return runtime::time_call(fn) * scale; };
  time(ours);
  time(theirs);
  std::vector<double> a, b;
  for (auto _ : state) {
    a.push_back(time(ours));
    b.push_back(time(theirs));
  }
  state.counters[ours_name + "_" + unit] = median(a);
  state.counters[theirs_name + "_" + unit] = median(b);
  state.counters["speedup"] = median(b) / median(a);
}

}  // namespace shrink::bench
