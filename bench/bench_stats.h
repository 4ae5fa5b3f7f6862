// What the benchmarks that alternate two versions call by call share: the median, and the loop
// that times both and reports their medians and ratio.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/stopwatch.h"

namespace shrink::bench {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs `ours` then `theirs` once each per benchmark iteration, after one warm-up call of each.
// Counters: `<ours_name>_<unit>` and `<theirs_name>_<unit>`, the medians in `unit` ("ms" or "us"),
// and `speedup`, theirs over ours.
template <class Ours, class Theirs>
void time_alternately(benchmark::State& state, const std::string& ours_name, Ours ours, const std::string& theirs_name,
                      Theirs theirs, const std::string& unit) {
  const double scale = unit == "ms" ? 1e3 : 1e6;
  const auto time = [&](auto& fn) {
    core::Stopwatch t;
    fn();
    return t.seconds() * scale;
  };
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
