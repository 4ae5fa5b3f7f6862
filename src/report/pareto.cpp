// Pareto frontier by pairwise dominance: a comparison holds tens of models, not millions.
#include "report/pareto.h"

#include <cmath>

namespace shrink::report {

std::vector<bool> pareto_front(const std::vector<Tradeoff>& points) {
  std::vector<bool> front(points.size(), false);
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    if (!std::isfinite(p.cost) || !std::isfinite(p.accuracy)) continue;
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j) {
      const auto& q = points[j];
      if (j == i || !std::isfinite(q.cost) || !std::isfinite(q.accuracy)) continue;
      dominated = q.cost <= p.cost && q.accuracy >= p.accuracy && (q.cost < p.cost || q.accuracy > p.accuracy);
    }
    front[i] = !dominated;
  }
  return front;
}

}  // namespace shrink::report
