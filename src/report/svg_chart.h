// Inline SVG charts drawn by shrink itself, so an HTML report needs no script and no network.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace shrink::report::svg {

struct Axis {
  std::string label;
  bool log = false;  // base-10 ticks; every value must be > 0
  // Fixed ends; NaN: fitted to the data with a margin.
  double min = std::numeric_limits<double>::quiet_NaN();
  double max = std::numeric_limits<double>::quiet_NaN();
};

struct Series {
  std::string name;
  std::vector<double> x, y;
  bool dashed = false;
};

// A shaded span of the x axis with a label (a modifier's epoch window).
struct Band {
  double from = 0, to = 0;
  std::string label;
};

struct Point {
  double x = 0, y = 0;
  std::string label;
  bool highlighted = false;  // drawn filled and joined in x order (a Pareto frontier)
  int group = 0;             // colour index (one per run)
};

struct Bar {
  std::string label;
  double value = 0;
  std::string text;  // printed at the bar's end
};

std::string line_chart(const std::string& title, const Axis& x, const Axis& y, const std::vector<Series>& series,
                       const std::vector<Band>& bands = {});
std::string scatter_chart(const std::string& title, const Axis& x, const Axis& y, const std::vector<Point>& points,
                          const std::vector<std::string>& group_names = {});
// Horizontal bars, one row each, scaled from 0 to the largest value.
std::string bar_chart(const std::string& title, const std::vector<Bar>& bars);
// Counts as a heat map (rows = true class, columns = predicted), each cell shaded by its share of the row.
std::string heat_map(const std::string& title, const std::vector<std::string>& labels,
                     const std::vector<std::vector<int64_t>>& counts);

// Round tick values covering [lo, hi]: 1-2-5 steps, or powers of ten (and 2×, 5×) on a log axis.
std::vector<double> ticks(double lo, double hi, bool log);

}  // namespace shrink::report::svg
