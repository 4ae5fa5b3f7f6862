// The Pareto frontier of models trading a cost (size, latency) against accuracy.
#pragma once

#include <vector>

namespace shrink::report {

struct Tradeoff {
  double cost = 0;      // lower is better
  double accuracy = 0;  // higher is better
};

// For each point, whether no other point is at least as good on both axes and better on one.
// Equal points are all on the frontier; non-finite points never are.
std::vector<bool> pareto_front(const std::vector<Tradeoff>& points);

}  // namespace shrink::report
