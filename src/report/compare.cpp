// Comparison of runs: rows, baseline deltas, environments, Pareto frontiers, and their renderings.
#include "report/compare.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/format.h"
#include "report/html.h"
#include "report/pareto.h"
#include "report/svg_chart.h"

namespace shrink::report {

namespace fs = std::filesystem;
using core::cat;
using core::format_double;
using core::html_escape;
using nlohmann::json;

namespace {

bool same_environment(const Report::Environment& a, const Report::Environment& b) {
  return a.cpu == b.cpu && a.threads == b.threads && a.device == b.device && a.shrink_version == b.shrink_version &&
         a.torch_version == b.torch_version && a.latency_inputs == b.latency_inputs;
}

std::string env_letter(int i) {
  return std::string(1, static_cast<char>('A' + i % 26)) + (i >= 26 ? std::to_string(i / 26) : "");
}

const LatencyStat* latency_at(const StageReport& s, int64_t batch) {
  for (const auto& l : s.metrics.latency) {
    if (l.batch == batch) return &l;
  }
  return nullptr;
}

std::string row_name(const Comparison& c, const CompareRow& row) {
  const auto& s = c.stage(row);
  return row.initial ? cat(c.runs[row.run].label, " [", s.kind, "]")
                     : cat(c.runs[row.run].label, " [", s.index, " ", s.kind, "]");
}

std::string fronts_of(const CompareRow& row) {
  std::string out = row.size_front ? "size" : "";
  if (row.flops_front) out += cat(out.empty() ? "" : ", ", "FLOPs");
  for (const auto& [batch, on] : row.latency_front) {
    if (on) out += cat(out.empty() ? "" : ", ", "latency@", batch);
  }
  return out;
}

// Where the environments differ, in words: "threads 2 vs 1; cpu ... vs ...".
std::string environment_differences(const std::vector<Report::Environment>& envs) {
  std::vector<std::string> parts;
  auto differs = [&](auto field, const char* name) {
    std::set<std::string> values;
    for (const auto& e : envs) values.insert(field(e));
    if (values.size() > 1)
      parts.push_back(cat(name, " ", core::join(std::vector<std::string>(values.begin(), values.end()), " vs ")));
  };
  differs([](const Report::Environment& e) { return e.cpu; }, "CPU");
  differs([](const Report::Environment& e) { return std::to_string(e.threads); }, "threads");
  differs([](const Report::Environment& e) { return e.device; }, "device");
  differs([](const Report::Environment& e) { return e.shrink_version; }, "shrink");
  differs([](const Report::Environment& e) { return e.torch_version; }, "LibTorch");
  differs([](const Report::Environment& e) { return e.latency_inputs; }, "latency timed on");
  return core::join(parts, "; ");
}

// A table both renderings print: the same cells, as Markdown or as HTML.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::set<size_t> text_columns;  // left-aligned in HTML
  std::vector<bool> bold;         // per row, HTML only
};

// One row a model: identity, accuracy and Δ, size and ratio, sparsity, latency per batch size,
// throughput at the largest, environment, fronts.
Table model_table(const Comparison& c) {
  Table t;
  t.header = {"#", "run", "stage", "model", c.quality_name(), "Δ pt", "size", "ratio", "sparsity", "FLOPs"};
  for (const int64_t b : c.batches) {
    t.header.push_back(cat("p50 ms @", b));
    t.header.push_back(cat("p99 ms @", b));
  }
  const int64_t top_batch = c.batches.empty() ? 0 : c.batches.back();
  if (top_batch) t.header.push_back(cat("samples/s @", top_batch));
  t.header.push_back("env");
  t.header.push_back("Pareto front");
  t.text_columns = {1, 2, 3, t.header.size() - 1};
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const auto& row = c.rows[i];
    const auto& s = c.stage(row);
    std::vector<std::string> cells = {cat(i, i == c.baseline ? " (baseline)" : ""),
                                      c.runs[row.run].label,
                                      row.initial ? s.kind : cat(s.index, " ", s.kind),
                                      s.model,
                                      format_double("%.4f", c.quality(s)),
                                      format_double("%+.2f", row.delta_pt),
                                      core::human_bytes(s.metrics.size_bytes),
                                      format_double("%.1fx", row.ratio),
                                      format_double("%.3f", s.metrics.sparsity),
                                      flops_text(s.metrics.flops)};
    for (const int64_t b : c.batches) {
      const auto* l = latency_at(s, b);
      cells.push_back(l ? format_double("%.3f", l->p50_ms) : "—");
      cells.push_back(l ? format_double("%.3f", l->p99_ms) : "—");
    }
    if (top_batch) {
      const auto* l = latency_at(s, top_batch);
      cells.push_back(l ? format_double("%.0f", l->samples_per_s) : "—");
    }
    cells.push_back(env_letter(row.environment));
    cells.push_back(fronts_of(row));
    t.bold.push_back(!cells.back().empty());
    t.rows.push_back(std::move(cells));
  }
  return t;
}

Table environment_table(const Comparison& c) {
  Table t;
  t.header = {"env", "CPU", "threads", "device", "shrink", "LibTorch", "latency timed on"};
  t.text_columns = {1};
  for (size_t e = 0; e < c.environments.size(); ++e) {
    const auto& env = c.environments[e];
    t.rows.push_back({env_letter(static_cast<int>(e)), env.cpu, std::to_string(env.threads), env.device,
                      env.shrink_version, env.torch_version, env.latency_inputs});
    t.bold.push_back(false);
  }
  return t;
}

std::string markdown(const Table& t) {
  std::string md = "| " + core::join(t.header, " | ") + " |\n|";
  for (size_t i = 0; i < t.header.size(); ++i) md += "---|";
  md += "\n";
  for (const auto& r : t.rows) md += "| " + core::join(r, " | ") + " |\n";
  return md;
}

std::string html_table(const Table& t) {
  std::string out = "<table><tr>";
  for (const auto& h : t.header) out += "<th>" + html_escape(h) + "</th>";
  out += "</tr>\n";
  for (size_t i = 0; i < t.rows.size(); ++i) {
    out += t.bold[i] ? "<tr class=\"front\">" : "<tr>";
    for (size_t k = 0; k < t.rows[i].size(); ++k) {
      out += (t.text_columns.count(k) ? "<td class=\"l\">" : "<td>") + html_escape(t.rows[i][k]) + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

}  // namespace

ComparedRun load_compared_run(const fs::path& path) {
  std::error_code ec;
  fs::path report_path = path;
  if (fs::is_directory(path, ec)) {
    report_path = path / "report.json";
    if (!fs::is_regular_file(report_path, ec)) {
      throw core::UsageError(cat(
          path.string(), ": a folder without report.json; give a run folder (shrink run --out DIR) or a report.json"));
    }
  } else if (!fs::exists(path, ec)) {
    throw core::UsageError(cat(path.string(), ": no such run folder or report file"));
  } else {
    try {
      core::require_regular_file(path);
    } catch (const core::Error& e) {
      throw core::UsageError(cat(e.what(), "; give a run folder (shrink run --out DIR) or a report.json"));
    }
  }
  ComparedRun run;
  run.source = report_path.string();
  run.report = read_report(report_path);
  run.label = run.report.recipe.name;
  return run;
}

Comparison compare(std::vector<ComparedRun> runs, size_t baseline) {
  SHRINK_CHECK(!runs.empty(), "nothing to compare: give at least one run folder or report");
  Comparison c;
  // Two runs of one recipe (a sweep with --set) keep apart by their folders.
  std::map<std::string, int> uses;
  for (const auto& r : runs) ++uses[r.label];
  for (auto& r : runs) {
    if (uses[r.label] > 1) r.label = cat(r.label, " (", fs::path(r.source).parent_path().filename().string(), ")");
  }
  c.runs = std::move(runs);
  std::set<int64_t> batches;
  for (size_t i = 0; i < c.runs.size(); ++i) {
    const auto& rep = c.runs[i].report;
    int env = -1;
    for (size_t e = 0; e < c.environments.size() && env < 0; ++e) {
      if (same_environment(c.environments[e], rep.environment)) env = static_cast<int>(e);
    }
    if (env < 0) {
      env = static_cast<int>(c.environments.size());
      c.environments.push_back(rep.environment);
    }
    // A run's models as brought come first: with the default baseline (row 0), the first run's
    // starting model is what every stage is measured against.
    for (const bool initial : {true, false}) {
      const auto& list = initial ? rep.initial : rep.stages;
      for (size_t s = 0; s < list.size(); ++s) {
        CompareRow row;
        row.run = i;
        row.stage = s;
        row.initial = initial;
        row.environment = env;
        c.rows.push_back(row);
        for (const auto& l : list[s].metrics.latency) batches.insert(l.batch);
      }
    }
  }
  if (c.rows.empty()) throw core::UsageError("nothing to compare: the reports list no stages");
  const auto scored = std::count_if(c.rows.begin(), c.rows.end(),
                                    [&](const CompareRow& r) { return c.stage(r).metrics.fidelity.has_value(); });
  if (scored > 0 && scored < static_cast<std::ptrdiff_t>(c.rows.size())) {
    throw core::UsageError(
        "the runs mix data with labels (scored by accuracy) and without (scored by fidelity to a reference): "
        "compare them apart");
  }
  c.by_fidelity = scored > 0;
  if (baseline >= c.rows.size()) {
    throw core::UsageError(cat("--baseline ", baseline, " is past the last row (", c.rows.size() - 1,
                               "); rows are the runs' stages in order, numbered from 0"));
  }
  c.baseline = baseline;
  c.batches.assign(batches.begin(), batches.end());
  const auto& base = c.stage(c.rows[baseline]);
  std::vector<Tradeoff> by_size;
  for (auto& row : c.rows) {
    const auto& s = c.stage(row);
    row.delta_pt = 100 * (c.quality(s) - c.quality(base));
    row.ratio = s.metrics.size_bytes > 0
                    ? static_cast<double>(base.metrics.size_bytes) / static_cast<double>(s.metrics.size_bytes)
                    : 0;
    by_size.push_back({static_cast<double>(s.metrics.size_bytes), c.quality(s)});
  }
  const auto size_front = pareto_front(by_size);
  for (size_t i = 0; i < c.rows.size(); ++i) c.rows[i].size_front = size_front[i];
  // Rows without a FLOP count (TorchScript models, older reports) stay off that frontier.
  std::vector<Tradeoff> by_flops;
  std::vector<size_t> counted;
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const auto& m = c.stage(c.rows[i]).metrics;
    if (m.flops <= 0) continue;
    by_flops.push_back({static_cast<double>(m.flops), c.quality(c.stage(c.rows[i]))});
    counted.push_back(i);
  }
  const auto flops_front = pareto_front(by_flops);
  for (size_t k = 0; k < counted.size(); ++k) c.rows[counted[k]].flops_front = flops_front[k];
  // Latencies measured under other conditions are shown but never ranked against the baseline's.
  const int base_env = c.rows[baseline].environment;
  for (const int64_t batch : c.batches) {
    std::vector<Tradeoff> by_latency;
    std::vector<size_t> index;
    for (size_t i = 0; i < c.rows.size(); ++i) {
      const auto* l = latency_at(c.stage(c.rows[i]), batch);
      if (l == nullptr || c.rows[i].environment != base_env) continue;
      by_latency.push_back({l->p50_ms, c.quality(c.stage(c.rows[i]))});
      index.push_back(i);
    }
    const auto front = pareto_front(by_latency);
    for (size_t k = 0; k < index.size(); ++k) c.rows[index[k]].latency_front[batch] = front[k];
  }
  return c;
}

std::string to_markdown(const Comparison& c) {
  const auto& base = c.stage(c.rows[c.baseline]);
  std::string md = cat("# shrink compare: ", c.runs.size(), " run", c.runs.size() == 1 ? "" : "s", ", ", c.rows.size(),
                       " models\n\n");
  md += cat("Baseline: row ", c.baseline, " (", row_name(c, c.rows[c.baseline]), ", ", c.quality_name(), " ",
            format_double("%.4f", c.quality(base)), ", ", core::human_bytes(base.metrics.size_bytes), "). Δ is in ",
            c.quality_name(), " points; ratio is the baseline's size over the row's.\n\n");
  if (c.environments.size() > 1) {
    md += cat("**Warning: these runs were measured under ", c.environments.size(), " different environments (",
              environment_differences(c.environments),
              "). Latencies are comparable only within one environment; the latency "
              "frontier ranks only rows measured like the baseline (environment ",
              env_letter(c.rows[c.baseline].environment), ").**\n\n");
  }
  md += markdown(model_table(c));
  md += "\n## Environments\n\n" + markdown(environment_table(c));
  md += "\n## Runs\n\n";
  for (const auto& r : c.runs) {
    md += cat("- ", r.label, ": `", r.source, "` (recipe `", r.report.recipe.path, "`",
              r.report.recipe.overrides.empty() ? "" : cat(", --set ", core::join(r.report.recipe.overrides, " ")),
              ")\n");
  }
  return md;
}

json to_json(const Comparison& c) {
  json rows = json::array();
  for (size_t i = 0; i < c.rows.size(); ++i) {
    const auto& row = c.rows[i];
    const auto& s = c.stage(row);
    json latency = json::array();
    for (const auto& l : s.metrics.latency) {
      latency.push_back({{"batch", l.batch},
                         {"p50_ms", l.p50_ms},
                         {"p90_ms", l.p90_ms},
                         {"p99_ms", l.p99_ms},
                         {"samples_per_s", l.samples_per_s}});
    }
    json fronts = {{"size", row.size_front}, {"flops", row.flops_front}};
    for (const auto& [batch, on] : row.latency_front) fronts[cat("latency@", batch)] = on;
    rows.push_back({{"row", i},
                    {"run", c.runs[row.run].label},
                    {"stage", s.index},
                    {"kind", s.kind},
                    {"model", s.model},
                    {"accuracy", s.metrics.accuracy},
                    {"quality", c.quality(s)},
                    {"delta_pt", row.delta_pt},
                    {"size_bytes", s.metrics.size_bytes},
                    {"compression_ratio", row.ratio},
                    {"sparsity", s.metrics.sparsity},
                    {"flops", s.metrics.flops},
                    {"latency", latency},
                    {"environment", env_letter(row.environment)},
                    {"pareto", fronts}});
  }
  json envs = json::array();
  for (size_t e = 0; e < c.environments.size(); ++e) {
    const auto& env = c.environments[e];
    envs.push_back({{"id", env_letter(static_cast<int>(e))},
                    {"cpu", env.cpu},
                    {"threads", env.threads},
                    {"device", env.device},
                    {"shrink_version", env.shrink_version},
                    {"torch_version", env.torch_version},
                    {"latency_inputs", env.latency_inputs}});
  }
  json runs = json::array();
  for (const auto& r : c.runs) {
    runs.push_back({{"label", r.label},
                    {"report", r.source},
                    {"recipe", r.report.recipe.path},
                    {"overrides", r.report.recipe.overrides}});
  }
  return {{"schema", kCompareSchema},
          {"baseline", c.baseline},
          {"batches", c.batches},
          {"quality", c.quality_name()},
          {"runs", runs},
          {"environments", envs},
          {"mixed_environments", c.environments.size() > 1},
          {"rows", rows}};
}

std::string to_html(const Comparison& c) {
  std::string body = "<h1>shrink compare</h1>\n";
  const auto& base = c.stage(c.rows[c.baseline]);
  const std::string quality_axis = c.by_fidelity ? "mean cosine to the reference" : "test accuracy";
  body += cat("<p class=\"meta\">", c.runs.size(), " runs, ", c.rows.size(), " models. Baseline: row ", c.baseline,
              " (", html_escape(row_name(c, c.rows[c.baseline])), ", ", c.quality_name(), " ",
              format_double("%.4f", c.quality(base)), ", ", html_escape(core::human_bytes(base.metrics.size_bytes)),
              "). Bold rows are on a Pareto frontier.</p>\n");
  if (c.environments.size() > 1) {
    body += cat("<p class=\"warn\">Measured under ", c.environments.size(), " different environments (",
                html_escape(environment_differences(c.environments)),
                "): latencies are comparable only within one environment; the "
                "latency frontier ranks only rows measured like the baseline (",
                env_letter(c.rows[c.baseline].environment), ").</p>\n");
  }
  std::vector<std::string> groups;
  for (const auto& r : c.runs) groups.push_back(r.label);
  std::vector<svg::Point> by_size;
  for (const auto& row : c.rows) {
    const auto& s = c.stage(row);
    by_size.push_back({static_cast<double>(s.metrics.size_bytes), c.quality(s),
                       cat(c.runs[row.run].label, " [", s.index, "] ", format_double("%.4f", c.quality(s)), ", ",
                           core::human_bytes(s.metrics.size_bytes)),
                       row.size_front, static_cast<int>(row.run)});
  }
  svg::Axis size_axis{"file size (bytes, log scale)", true};
  body += "<h2>Pareto charts</h2>\n<div class=\"charts\">" +
          svg::scatter_chart(cat(c.quality_name(), " vs size (frontier: dashed)"), size_axis, {quality_axis}, by_size,
                             groups);
  std::vector<svg::Point> by_flops;
  for (const auto& row : c.rows) {
    const auto& s = c.stage(row);
    if (s.metrics.flops <= 0) continue;
    by_flops.push_back({static_cast<double>(s.metrics.flops), c.quality(s),
                        cat(c.runs[row.run].label, " [", s.index, "] ", format_double("%.4f", c.quality(s)), ", ",
                            flops_text(s.metrics.flops), " FLOPs"),
                        row.flops_front, static_cast<int>(row.run)});
  }
  if (!by_flops.empty()) {
    body += svg::scatter_chart(cat(c.quality_name(), " vs FLOPs"), svg::Axis{"FLOPs a sample (log scale)", true},
                               {quality_axis}, by_flops, groups);
  }
  for (const int64_t batch : c.batches) {
    std::vector<svg::Point> by_latency;
    for (const auto& row : c.rows) {
      const auto& s = c.stage(row);
      const auto* l = latency_at(s, batch);
      if (l == nullptr) continue;
      const auto it = row.latency_front.find(batch);
      by_latency.push_back(
          {l->p50_ms, c.quality(s),
           cat(c.runs[row.run].label, " [", s.index, "] ", format_double("%.4f", c.quality(s)), ", ",
               format_double("%.3f ms", l->p50_ms),
               row.environment != c.rows[c.baseline].environment ? cat(" (env ", env_letter(row.environment), ")")
                                                                 : ""),
           it != row.latency_front.end() && it->second, static_cast<int>(row.run)});
    }
    svg::Axis lat_axis{cat("p50 latency at batch ", batch, " (ms, log scale)"), true};
    body += svg::scatter_chart(cat(c.quality_name(), " vs latency, batch ", batch), lat_axis, {quality_axis},
                               by_latency, groups);
  }
  body += "</div>\n<h2>All models</h2>\n" + html_table(model_table(c));
  body += "<h2>Environments</h2>\n" + html_table(environment_table(c));
  body += "<h2>Runs</h2>\n<ul>";
  for (const auto& r : c.runs) {
    body += cat("<li>", html_escape(r.label), ": <code>", html_escape(r.source), "</code> (recipe <code>",
                html_escape(r.report.recipe.path), "</code>",
                r.report.recipe.overrides.empty()
                    ? ""
                    : cat(", --set <code>", html_escape(core::join(r.report.recipe.overrides, " ")), "</code>"),
                ")</li>");
  }
  body += "</ul>\n";
  return html::page("shrink compare", body);
}

void write_comparison(const fs::path& dir, const Comparison& c) {
  fs::create_directories(dir);
  core::write_text_atomically(dir / "compare.md", to_markdown(c));
  core::write_text_atomically(dir / "compare.json", to_json(c).dump(2) + "\n");
  core::write_text_atomically(dir / "compare.html", to_html(c));
}

}  // namespace shrink::report
