// Interleaved timing rounds with warm-up, a stopping rule and a budget.
#include "runtime/timing.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/stopwatch.h"

namespace shrink::runtime {

double percentile(std::vector<double> values, double p) {
  SHRINK_CHECK(!values.empty(), "percentile of no values");
  SHRINK_CHECK(p >= 0 && p <= 100, "percentile must be in [0, 100], got ", p);
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[rank == 0 ? 0 : rank - 1];
}

double median(std::vector<double> values) { return percentile(std::move(values), 50); }

double time_call(const std::function<void()>& fn) {
  core::Stopwatch watch;
  fn();
  return watch.seconds();
}

double Timing::total_seconds() const {
  double total = 0;
  for (const double s : seconds) total += s;
  return total;
}

std::vector<Timing> time_interleaved(const std::vector<std::function<void()>>& candidates, const TimingOptions& o,
                                     const TimingHooks& hooks) {
  SHRINK_CHECK(!candidates.empty(), "nothing to time");
  SHRINK_CHECK(o.warmup() >= 0, "timing warmup must be >= 0, got ", o.warmup());
  SHRINK_CHECK(o.min_calls() >= 1, "timing min_calls must be >= 1, got ", o.min_calls());
  SHRINK_CHECK(o.max_calls() == 0 || o.max_calls() >= o.min_calls(), "timing max_calls (", o.max_calls(),
               ") must be 0 or at least min_calls (", o.min_calls(), ")");
  SHRINK_CHECK(o.budget_s() >= 0 && o.min_seconds() >= 0 && o.round_s() >= 0 && o.stable_within() >= 0,
               "timing budget, min_seconds, round_s and stable_within must be >= 0");
  const size_t n = candidates.size();
  std::vector<Timing> out(n);
  std::vector<int64_t> calls(n, 1);
  for (size_t i = 0; i < n; ++i) {
    if (hooks.before_warmup) hooks.before_warmup(i);
    // The median warm-up call sizes the rounds: the first call (allocation, packing) is no guide.
    std::vector<double> warm;
    for (int64_t k = 0; k < o.warmup(); ++k) warm.push_back(time_call(candidates[i]));
    if (o.round_s() > 0 && !warm.empty()) {
      calls[i] = std::clamp<int64_t>(static_cast<int64_t>(o.round_s() / std::max(median(warm), 1e-7)), 1, 1000);
    }
    if (hooks.after_warmup) hooks.after_warmup(i);
  }
  std::vector<double> previous(n, -1.0);
  std::vector<int> steady_rounds(n, 0);
  const auto enough = [&](size_t i) {
    const auto& t = out[i].seconds;
    const auto count = static_cast<int64_t>(t.size());
    if (o.max_calls() > 0 && count >= o.max_calls()) return true;
    return count >= o.min_calls() && out[i].total_seconds() >= o.min_seconds() &&
           (o.stable_within() <= 0 || steady_rounds[i] >= 2);
  };
  core::Stopwatch budget;
  bool done = false;
  while (!done) {
    for (size_t i = 0; i < n; ++i) {
      const int64_t left = o.max_calls() > 0 ? o.max_calls() - static_cast<int64_t>(out[i].seconds.size()) : calls[i];
      for (int64_t k = 0; k < std::min(calls[i], left); ++k) out[i].seconds.push_back(time_call(candidates[i]));
      if (o.stable_within() > 0) {
        const double m = median(out[i].seconds);
        const bool steady = previous[i] > 0 && std::fabs(m - previous[i]) <= o.stable_within() * previous[i];
        steady_rounds[i] =
            static_cast<int64_t>(out[i].seconds.size()) >= o.min_calls() && steady ? steady_rounds[i] + 1 : 0;
        previous[i] = m;
      }
    }
    done = true;
    for (size_t i = 0; i < n; ++i) done = done && enough(i);
    const bool spent = o.budget_s() > 0 && budget.seconds() >= o.budget_s();
    if (hooks.after_round) hooks.after_round(o.budget_s() > 0 ? std::min(1.0, budget.seconds() / o.budget_s()) : 0.0);
    if (done) {
      for (auto& t : out) t.settled = true;
    } else if (spent) {
      for (size_t i = 0; i < n; ++i) out[i].settled = enough(i);
      done = true;
    }
  }
  return out;
}

}  // namespace shrink::runtime
