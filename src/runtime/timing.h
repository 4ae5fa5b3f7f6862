// One way of timing code on a noisy machine, behind every latency shrink reports (inference-plan
// choices, report.json, `shrink bench`, bench/): warm-up calls first, then the candidates called
// in turn, round after round, so that each sees the same noise; each round gives every candidate
// about the same time. Timing stops once every candidate has enough — a number of calls, a total
// time, a median that stopped moving — or a budget is spent. Percentiles by nearest rank.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace shrink::runtime {

// Nearest-rank percentile of unsorted values, p in [0, 100]; the median is percentile 50.
double percentile(std::vector<double> values, double p);
double median(std::vector<double> values);

// Seconds one call of `fn` takes.
double time_call(const std::function<void()>& fn);

struct TimingOptions {
  TORCH_ARG(int64_t, warmup) = 5;        // untimed calls of each candidate before the first round
  TORCH_ARG(int64_t, min_calls) = 1;     // timed calls of each candidate, at the least
  TORCH_ARG(int64_t, max_calls) = 0;     // and at the most (0: no limit but the budget)
  TORCH_ARG(double, min_seconds) = 0.0;  // and until each has run this long in all
  // > 0: and until every candidate's median moved by less than this share of itself over two
  // rounds in a row.
  TORCH_ARG(double, stable_within) = 0.0;
  TORCH_ARG(double, budget_s) = 0.0;  // stop once this much time went by (0: no budget)
  // Each round runs a candidate for about this long (its calls sized from its warm-up median,
  // 1 to 1000 a round); 0: one call a round.
  TORCH_ARG(double, round_s) = 0.0;
};

struct Timing {
  std::vector<double> seconds;  // every timed call, in order
  bool settled = false;         // the stopping rule was met (false: the budget ran out first)
  double total_seconds() const;
  double percentile_ms(double p) const { return 1e3 * percentile(seconds, p); }
};

// Called around each candidate's warm-up (`shrink bench` reads the peak RSS there), and after each
// round with the share of the budget spent.
struct TimingHooks {
  std::function<void(size_t candidate)> before_warmup, after_warmup;
  std::function<void(double budget_spent)> after_round;
};

// Times each of `candidates` (a call that runs what is timed, synchronised) as described above.
std::vector<Timing> time_interleaved(const std::vector<std::function<void()>>& candidates, const TimingOptions& options,
                                     const TimingHooks& hooks = {});

}  // namespace shrink::runtime
