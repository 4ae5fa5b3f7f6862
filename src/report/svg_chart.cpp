// SVG line, scatter, bar and heat-map charts with round ticks and legends.
#include "report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/format.h"
#include "report/html.h"

namespace shrink::report::svg {

namespace {

// Twelve distinguishable colours: a comparison of every recipe in recipes/ has eleven runs.
const char* const kPalette[] = {"#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6",
                                "#dd4477", "#66aa00", "#b82e2e", "#316395", "#8c564b", "#17becf"};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

const char* colour(int i) { return kPalette[((i % kPaletteSize) + kPaletteSize) % kPaletteSize]; }

std::string f(double v) { return core::format_double("%.1f", v); }

// Tick labels short enough for an axis: 1.5M, 250k, 0.91, 1e-05.
std::string tick_label(double v) {
  const double a = std::fabs(v);
  if (a >= 1e6) return core::format_double("%gM", v / 1e6);
  if (a >= 1e4) return core::format_double("%gk", v / 1e3);
  return core::format_double("%g", v);
}

double nice_step(double range) {
  const double raw = range / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

// Maps data values to pixels along one axis.
struct Scale {
  double lo = 0, hi = 1;
  bool log = false;
  double px0 = 0, px1 = 1;  // pixel of lo and of hi
  // A fixed axis end can fall between round ticks; those past it are not drawn.
  bool contains(double v) const {
    const double slack = 1e-9 * (hi - lo);
    return v >= lo - slack && v <= hi + slack;
  }
  double operator()(double v) const {
    const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
    return px0 + t * (px1 - px0);
  }
};

Scale fit(const Axis& axis, std::vector<double> values, double px0, double px1) {
  values.erase(
      std::remove_if(values.begin(), values.end(), [&](double v) { return !std::isfinite(v) || (axis.log && v <= 0); }),
      values.end());
  double lo = values.empty() ? (axis.log ? 1 : 0) : *std::min_element(values.begin(), values.end());
  double hi = values.empty() ? (axis.log ? 10 : 1) : *std::max_element(values.begin(), values.end());
  if (!std::isnan(axis.min)) lo = axis.min;
  if (!std::isnan(axis.max)) hi = axis.max;
  if (hi <= lo) {
    if (axis.log) {
      lo /= 2;
      hi *= 2;
    } else {
      const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
      lo -= pad;
      hi += pad;
    }
  }
  const auto t = ticks(lo, hi, axis.log);
  Scale s;
  s.log = axis.log;
  s.lo = std::isnan(axis.min) ? std::min(lo, t.front()) : lo;
  s.hi = std::isnan(axis.max) ? std::max(hi, t.back()) : hi;
  s.px0 = px0;
  s.px1 = px1;
  return s;
}

struct Frame {
  double width, height, left = 64, right = 16, top = 34, bottom = 48;
  double plot_w() const { return width - left - right; }
  double plot_h() const { return height - top - bottom; }
};

std::string open_svg(double w, double h, const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"" + f(w) + "\" height=\"" + f(h) +
         "\" viewBox=\"0 0 " + f(w) + " " + f(h) + "\" font-family=\"system-ui, sans-serif\" font-size=\"11\"><title>" +
         core::html_escape(title) + "</title><text x=\"" + f(w / 2) +
         "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\">" + core::html_escape(title) +
         "</text>";
}

// Grid, ticks and axis labels of a two-axis chart.
std::string axes(const Frame& fr, const Scale& xs, const Scale& ys, const Axis& x, const Axis& y) {
  std::string out;
  const double x0 = fr.left, x1 = fr.left + fr.plot_w(), y0 = fr.top + fr.plot_h(), y1 = fr.top;
  for (const double t : ticks(xs.lo, xs.hi, xs.log)) {
    if (!xs.contains(t)) continue;
    const double px = xs(t);
    out += "<line x1=\"" + f(px) + "\" y1=\"" + f(y1) + "\" x2=\"" + f(px) + "\" y2=\"" + f(y0) +
           "\" stroke=\"#eceef2\"/>";
    out += "<text x=\"" + f(px) + "\" y=\"" + f(y0 + 15) + "\" text-anchor=\"middle\" fill=\"#555\">" + tick_label(t) +
           "</text>";
  }
  for (const double t : ticks(ys.lo, ys.hi, ys.log)) {
    if (!ys.contains(t)) continue;
    const double py = ys(t);
    out += "<line x1=\"" + f(x0) + "\" y1=\"" + f(py) + "\" x2=\"" + f(x1) + "\" y2=\"" + f(py) +
           "\" stroke=\"#eceef2\"/>";
    out += "<text x=\"" + f(x0 - 6) + "\" y=\"" + f(py + 4) + "\" text-anchor=\"end\" fill=\"#555\">" + tick_label(t) +
           "</text>";
  }
  out += "<rect x=\"" + f(x0) + "\" y=\"" + f(y1) + "\" width=\"" + f(fr.plot_w()) + "\" height=\"" + f(fr.plot_h()) +
         "\" fill=\"none\" stroke=\"#99a\"/>";
  out += "<text x=\"" + f((x0 + x1) / 2) + "\" y=\"" + f(fr.height - 10) + "\" text-anchor=\"middle\">" +
         core::html_escape(x.label) + "</text>";
  out += "<text transform=\"translate(14," + f((y0 + y1) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
         core::html_escape(y.label) + "</text>";
  return out;
}

std::string legend(double x, double y, const std::vector<std::pair<std::string, int>>& entries, bool line) {
  std::string out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const double yy = y + 16.0 * static_cast<double>(i);
    if (line) {
      out += "<line x1=\"" + f(x) + "\" y1=\"" + f(yy - 4) + "\" x2=\"" + f(x + 18) + "\" y2=\"" + f(yy - 4) +
             "\" stroke=\"" + colour(entries[i].second) + "\" stroke-width=\"2\"/>";
    } else {
      out += "<circle cx=\"" + f(x + 9) + "\" cy=\"" + f(yy - 4) + "\" r=\"4\" fill=\"" + colour(entries[i].second) +
             "\"/>";
    }
    out += "<text x=\"" + f(x + 24) + "\" y=\"" + f(yy) + "\">" + core::html_escape(entries[i].first) + "</text>";
  }
  return out;
}

}  // namespace

std::vector<double> ticks(double lo, double hi, bool log) {
  SHRINK_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi, "axis range must be finite and increasing, got [", lo,
               ", ", hi, "]");
  std::vector<double> out;
  if (log) {
    SHRINK_CHECK(lo > 0, "a log axis needs values > 0, got ", lo);
    const int d0 = static_cast<int>(std::floor(std::log10(lo))), d1 = static_cast<int>(std::ceil(std::log10(hi)));
    const bool dense = d1 - d0 <= 2;
    for (int d = d0; d <= d1; ++d) {
      for (const double m : dense ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
        const double t = m * std::pow(10.0, d);
        if (t >= lo / 1.0000001 && t <= hi * 1.0000001) out.push_back(t);
      }
    }
    if (out.size() < 2) {
      out = {std::pow(10.0, d0), std::pow(10.0, d1)};
    }
    return out;
  }
  const double step = nice_step(hi - lo);
  const double first = std::floor(lo / step + 1e-9) * step;
  for (double t = first; t <= hi + step * (1 - 1e-9); t += step) {
    out.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
    if (out.size() > 50) break;
  }
  return out;
}

std::string line_chart(const std::string& title, const Axis& x, const Axis& y, const std::vector<Series>& series,
                       const std::vector<Band>& bands) {
  bool named = false;
  std::vector<double> xv, yv;
  for (const auto& s : series) {
    SHRINK_CHECK(s.x.size() == s.y.size(), "series '", s.name, "' has ", s.x.size(), " x and ", s.y.size(),
                 " y values");
    xv.insert(xv.end(), s.x.begin(), s.x.end());
    yv.insert(yv.end(), s.y.begin(), s.y.end());
    named = named || !s.name.empty();
  }
  for (const auto& b : bands) {
    xv.push_back(b.from);
    xv.push_back(b.to);
  }
  Frame fr{named ? 560.0 + 190 : 560.0, 300};
  if (named) fr.right = 190 + 16;
  const Scale xs = fit(x, xv, fr.left, fr.left + fr.plot_w());
  const Scale ys = fit(y, yv, fr.top + fr.plot_h(), fr.top);
  std::string out = open_svg(fr.width, fr.height, title);
  for (size_t i = 0; i < bands.size(); ++i) {
    const double a = xs(std::max(bands[i].from, xs.lo)), b = xs(std::min(bands[i].to, xs.hi));
    out += "<rect x=\"" + f(a) + "\" y=\"" + f(fr.top) + "\" width=\"" + f(std::max(b - a, 1.0)) + "\" height=\"" +
           f(fr.plot_h()) + "\" fill=\"" + colour(static_cast<int>(i) + 2) + "\" fill-opacity=\"0.12\"><title>" +
           core::html_escape(bands[i].label) + "</title></rect>";
    out += "<text x=\"" + f(a + 3) + "\" y=\"" + f(fr.top + 12 + 12.0 * static_cast<double>(i)) + "\" fill=\"" +
           colour(static_cast<int>(i) + 2) + "\">" + core::html_escape(bands[i].label) + "</text>";
  }
  out += axes(fr, xs, ys, x, y);
  std::vector<std::pair<std::string, int>> entries;
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    std::string pts;
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k]) || (x.log && s.x[k] <= 0) || (y.log && s.y[k] <= 0))
        continue;
      pts += f(xs(s.x[k])) + "," + f(ys(s.y[k])) + " ";
    }
    const char* c = colour(static_cast<int>(i));
    out += "<polyline fill=\"none\" stroke=\"" + std::string(c) + "\" stroke-width=\"2\"" +
           (s.dashed ? " stroke-dasharray=\"5,4\"" : "") + " points=\"" + pts + "\"><title>" +
           core::html_escape(s.name) + "</title></polyline>";
    if (s.x.size() <= 40) {
      for (size_t k = 0; k < s.x.size(); ++k) {
        if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k])) continue;
        out += "<circle cx=\"" + f(xs(s.x[k])) + "\" cy=\"" + f(ys(s.y[k])) + "\" r=\"2.5\" fill=\"" + c + "\"/>";
      }
    }
    if (!s.name.empty()) entries.emplace_back(s.name, static_cast<int>(i));
  }
  if (named) out += legend(fr.left + fr.plot_w() + 14, fr.top + 10, entries, true);
  return out + "</svg>";
}

std::string scatter_chart(const std::string& title, const Axis& x, const Axis& y, const std::vector<Point>& points,
                          const std::vector<std::string>& group_names) {
  std::vector<double> xv, yv;
  for (const auto& p : points) {
    xv.push_back(p.x);
    yv.push_back(p.y);
  }
  const bool named = !group_names.empty();
  Frame fr{named ? 640.0 + 220 : 640.0, 380};
  if (named) fr.right = 220 + 16;
  const Scale xs = fit(x, xv, fr.left, fr.left + fr.plot_w());
  const Scale ys = fit(y, yv, fr.top + fr.plot_h(), fr.top);
  std::string out = open_svg(fr.width, fr.height, title) + axes(fr, xs, ys, x, y);
  std::vector<Point> front;
  for (const auto& p : points) {
    if (p.highlighted) front.push_back(p);
  }
  std::sort(front.begin(), front.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
  if (front.size() > 1) {
    std::string pts;
    for (const auto& p : front) pts += f(xs(p.x)) + "," + f(ys(p.y)) + " ";
    out += "<polyline fill=\"none\" stroke=\"#222\" stroke-width=\"1.5\" stroke-dasharray=\"4,3\" points=\"" + pts +
           "\"><title>Pareto frontier</title></polyline>";
  }
  for (const auto& p : points) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y) || (x.log && p.x <= 0) || (y.log && p.y <= 0)) continue;
    const std::string cx = f(xs(p.x)), cy = f(ys(p.y));
    out += "<circle cx=\"" + cx + "\" cy=\"" + cy + "\" r=\"" + (p.highlighted ? "5.5" : "4") + "\" fill=\"" +
           colour(p.group) + "\"" +
           (p.highlighted ? " stroke=\"#111\" stroke-width=\"1.5\"" : " fill-opacity=\"0.55\"") + "><title>" +
           core::html_escape(p.label) + "</title></circle>";
    if (p.highlighted) {
      // Labels of points in the right part of the plot run leftwards, so they stay inside it.
      const bool right = xs(p.x) > fr.left + 0.6 * fr.plot_w();
      out += "<text x=\"" + f(xs(p.x) + (right ? -7 : 7)) + "\" y=\"" + f(ys(p.y) - 6) + "\" font-size=\"10\"" +
             (right ? " text-anchor=\"end\"" : "") + ">" + core::html_escape(p.label) + "</text>";
    }
  }
  if (named) {
    std::vector<std::pair<std::string, int>> entries;
    for (size_t i = 0; i < group_names.size(); ++i) entries.emplace_back(group_names[i], static_cast<int>(i));
    out += legend(fr.left + fr.plot_w() + 14, fr.top + 10, entries, false);
  }
  return out + "</svg>";
}

std::string bar_chart(const std::string& title, const std::vector<Bar>& bars) {
  const double label_w = 200, bar_w = 320, row = 20, top = 30;
  const double width = label_w + bar_w + 190, height = top + row * static_cast<double>(bars.size()) + 10;
  double top_value = 0;
  for (const auto& b : bars) top_value = std::max(top_value, std::isfinite(b.value) ? b.value : 0.0);
  std::string out = open_svg(width, height, title);
  for (size_t i = 0; i < bars.size(); ++i) {
    const double yy = top + row * static_cast<double>(i);
    const double v = std::isfinite(bars[i].value) ? std::max(bars[i].value, 0.0) : 0.0;
    const double w = top_value > 0 ? bar_w * v / top_value : 0;
    out += "<text x=\"" + f(label_w - 6) + "\" y=\"" + f(yy + 13) + "\" text-anchor=\"end\">" +
           core::html_escape(bars[i].label) + "</text>";
    out += "<rect x=\"" + f(label_w) + "\" y=\"" + f(yy + 3) + "\" width=\"" + f(std::max(w, 1.0)) + "\" height=\"" +
           f(row - 6) + "\" fill=\"" + colour(0) + "\"><title>" +
           core::html_escape(bars[i].label + ": " + bars[i].text) + "</title></rect>";
    out += "<text x=\"" + f(label_w + w + 5) + "\" y=\"" + f(yy + 13) + "\" fill=\"#333\">" +
           core::html_escape(bars[i].text) + "</text>";
  }
  return out + "</svg>";
}

std::string heat_map(const std::string& title, const std::vector<std::string>& labels,
                     const std::vector<std::vector<int64_t>>& counts) {
  const size_t n = counts.size();
  for (const auto& r : counts)
    SHRINK_CHECK(r.size() == n, "a confusion matrix must be square, got a row of ", r.size(), " in ", n);
  const double cell = 34, left = 120, top = 110;
  const double width = left + cell * static_cast<double>(n) + 20, height = top + cell * static_cast<double>(n) + 30;
  auto name = [&](size_t i) { return i < labels.size() ? labels[i] : std::to_string(i); };
  std::string out = open_svg(width, height, title);
  for (size_t c = 0; c < n; ++c) {
    const double cx = left + cell * (static_cast<double>(c) + 0.5);
    out += "<text transform=\"translate(" + f(cx + 4) + "," + f(top - 6) + ") rotate(-60)\">" +
           core::html_escape(name(c)) + "</text>";
  }
  out += "<text x=\"" + f(left + cell * static_cast<double>(n) / 2) + "\" y=\"" + f(height - 8) +
         "\" text-anchor=\"middle\" fill=\"#555\">rows: true class · columns: predicted</text>";
  for (size_t r = 0; r < n; ++r) {
    int64_t total = 0;
    for (const auto v : counts[r]) total += v;
    const double yy = top + cell * static_cast<double>(r);
    out += "<text x=\"" + f(left - 6) + "\" y=\"" + f(yy + cell / 2 + 4) + "\" text-anchor=\"end\">" +
           core::html_escape(name(r)) + "</text>";
    for (size_t c = 0; c < n; ++c) {
      const double share = total > 0 ? static_cast<double>(counts[r][c]) / static_cast<double>(total) : 0.0;
      // Off-diagonal cells in red, so confusions stand out from the diagonal's blue.
      const int base[3] = {r == c ? 51 : 220, r == c ? 102 : 57, r == c ? 204 : 18};
      const double t = std::sqrt(share);
      char fill[16];
      std::snprintf(fill, sizeof fill, "#%02x%02x%02x", static_cast<int>(255 + t * (base[0] - 255)),
                    static_cast<int>(255 + t * (base[1] - 255)), static_cast<int>(255 + t * (base[2] - 255)));
      const double xx = left + cell * static_cast<double>(c);
      out += "<rect x=\"" + f(xx) + "\" y=\"" + f(yy) + "\" width=\"" + f(cell) + "\" height=\"" + f(cell) +
             "\" fill=\"" + fill + "\" stroke=\"#fff\"><title>" + core::html_escape(name(r) + " → " + name(c)) + ": " +
             std::to_string(counts[r][c]) + "</title></rect>";
      if (counts[r][c] > 0) {
        out += "<text x=\"" + f(xx + cell / 2) + "\" y=\"" + f(yy + cell / 2 + 4) +
               "\" text-anchor=\"middle\" font-size=\"10\" fill=\"" + (t > 0.6 ? "#fff" : "#222") + "\">" +
               std::to_string(counts[r][c]) + "</text>";
      }
    }
  }
  return out + "</svg>";
}

}  // namespace shrink::report::svg
