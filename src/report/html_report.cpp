// report.html: the run's tables and charts, drawn from the same Report that report.json holds.
#include "report/html_report.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/format.h"
#include "core/yaml_json.h"
#include "report/html.h"
#include "report/svg_chart.h"

namespace shrink::report {

using core::cat;
using core::format_double;
using core::html_escape;
using nlohmann::json;

namespace {

std::string stage_name(const StageReport& s) {
  return s.index < 0 ? cat(s.kind, " ", s.model) : cat(s.index, " ", s.kind, " ", s.model);
}

std::string stage_table(const Report& r) {
  std::string out =
      "<table><tr><th>#</th><th>stage</th><th>model</th><th>accuracy</th><th>loss</th><th>params</th><th>nonzero</th>"
      "<th>sparsity</th><th>FLOPs</th><th>size</th><th>wall</th></tr>\n";
  for (const auto* row : listed_rows(r)) {
    const auto& s = *row;
    const auto& m = s.metrics;
    out += cat("<tr><td>", row_number(s), "</td><td class=\"l\">", html_escape(s.kind), "</td><td class=\"l\">",
               html_escape(s.model), "</td><td>", format_double("%.4f", m.accuracy), "</td><td>",
               format_double("%.4f", m.loss), "</td><td>", m.params, "</td><td>", m.nonzero_params, "</td><td>",
               format_double("%.3f", m.sparsity), "</td><td>", html_escape(flops_text(m.flops)), "</td><td>",
               html_escape(core::human_bytes(m.size_bytes)), "</td><td>", format_double("%.1f s", s.wall_s),
               "</td></tr>\n");
  }
  return out + "</table>\n";
}

std::string latency_table(const Report& r) {
  std::string out =
      "<table><tr><th>#</th><th>model</th><th>batch</th><th>p50 ms</th><th>p90 ms</th><th>p99 "
      "ms</th><th>samples/s</th><th>path</th></tr>\n";
  for (const auto* row : listed_rows(r)) {
    const auto& s = *row;
    for (const auto& l : s.metrics.latency) {
      out += cat("<tr><td>", row_number(s), "</td><td class=\"l\">", html_escape(s.model), "</td><td>", l.batch,
                 "</td><td>", format_double("%.3f", l.p50_ms), "</td><td>", format_double("%.3f", l.p90_ms),
                 "</td><td>", format_double("%.3f", l.p99_ms), "</td><td>", format_double("%.0f", l.samples_per_s),
                 "</td><td class=\"l\">", html_escape(l.path), "</td></tr>\n");
    }
  }
  return out + "</table>\n";
}

std::string stage_charts(const Report& r) {
  std::vector<svg::Bar> acc, size, lat;
  for (const auto* row : listed_rows(r)) {
    const auto& s = *row;
    acc.push_back({stage_name(s), s.metrics.accuracy, format_double("%.4f", s.metrics.accuracy)});
    size.push_back({stage_name(s), static_cast<double>(s.metrics.size_bytes), core::human_bytes(s.metrics.size_bytes)});
    for (const auto& l : s.metrics.latency)
      lat.push_back({cat(stage_name(s), " @", l.batch), l.p50_ms, format_double("%.3f ms", l.p50_ms)});
  }
  return "<div class=\"charts\">" + svg::bar_chart("test accuracy per stage", acc) +
         svg::bar_chart("file size per stage", size) + svg::bar_chart("p50 latency per stage and batch", lat) +
         "</div>\n";
}

// The epoch windows of a stage's modifiers, as chart bands (an open end runs to the last epoch).
std::vector<svg::Band> modifier_bands(const StageReport& s, double last_epoch) {
  std::vector<svg::Band> bands;
  for (const auto& m : s.modifiers.value_or(std::vector<train::ModifierRecord>{})) {
    bands.push_back({m.window.start_epoch, m.window.end_epoch < 0 ? last_epoch : m.window.end_epoch, m.kind()});
  }
  return bands;
}

std::string training_curves(const Report& r) {
  std::string out;
  for (const auto& s : r.stages) {
    if (!s.training || s.training->epochs.empty()) continue;
    const auto& h = *s.training;
    svg::Series tl{"train loss", {}, {}}, vl{"validation loss", {}, {}, true}, ta{"train accuracy", {}, {}},
        va{"validation accuracy", {}, {}, true};
    bool have_val = false;
    for (const auto& e : h.epochs) {
      const auto x = static_cast<double>(e.epoch);
      tl.x.push_back(x), tl.y.push_back(e.train_loss), ta.x.push_back(x), ta.y.push_back(e.train_accuracy);
      vl.x.push_back(x), vl.y.push_back(e.val_loss), va.x.push_back(x), va.y.push_back(e.val_accuracy);
      have_val = have_val || e.val_accuracy > 0;
    }
    std::vector<svg::Series> loss{tl}, accuracy{ta};
    if (have_val) loss.push_back(vl), accuracy.push_back(va);
    // Another run a section compares the stage with (a distilled student trained alone), on the
    // accuracy chart only (the distilled student's loss includes the KD term: losses do not compare).
    for (const auto& section : s.sections) {
      const auto other = section->comparison();
      if (!other.history) continue;
      svg::Series a{cat(have_val ? "validation accuracy, " : "train accuracy, ", other.label), {}, {}, true};
      for (const auto& e : other.history->epochs) {
        a.x.push_back(static_cast<double>(e.epoch));
        a.y.push_back(have_val ? e.val_accuracy : e.train_accuracy);
      }
      accuracy.push_back(a);
    }
    const auto bands = modifier_bands(s, static_cast<double>(h.epochs.back().epoch));
    svg::Axis x{"epoch"};
    x.min = 0;
    x.max = static_cast<double>(h.epochs.back().epoch);
    out += cat("<h3>Stage ", html_escape(stage_name(s)), "</h3><p class=\"meta\">", h.epochs.size(), " epochs, ",
               h.steps, " steps", h.resumed ? ", resumed from a checkpoint" : "",
               bands.empty() ? "" : "; shaded: modifier windows", "</p>\n");
    out += "<div class=\"charts\">" + svg::line_chart("loss per epoch", x, {"loss"}, loss, bands) +
           svg::line_chart("accuracy per epoch", x, {"accuracy"}, accuracy, bands) + "</div>\n";
  }
  return out.empty() ? out : "<h2>Training curves</h2>\n" + out;
}

std::string layer_sparsity(const Report& r) {
  std::string out;
  for (const auto& s : r.stages) {
    const bool sparse =
        std::any_of(s.layers.begin(), s.layers.end(), [](const LayerStat& l) { return l.sparsity > 0; });
    if (s.layers.empty() || (!sparse && &s != &r.stages.back())) continue;
    std::vector<svg::Bar> bars;
    for (const auto& l : s.layers)
      bars.push_back(
          {l.name, l.sparsity, cat(format_double("%.3f", l.sparsity), " (", l.nonzero, " / ", l.numel, ")")});
    out += svg::bar_chart(cat("sparsity per layer after stage ", stage_name(s)), bars);
  }
  return out.empty() ? out : "<h2>Per-layer sparsity</h2>\n<div class=\"charts\">" + out + "</div>\n";
}

std::string confusion(const Report& r) {
  for (auto it = r.stages.rbegin(); it != r.stages.rend(); ++it) {
    if (it->metrics.confusion.empty()) continue;
    std::string out =
        cat("<h2>Confusion matrix (stage ", html_escape(stage_name(*it)), ")</h2>\n<div class=\"charts\">",
            svg::heat_map("test set: true class × predicted class", r.class_names, it->metrics.confusion));
    if (!it->metrics.per_class_accuracy.empty()) {
      std::vector<svg::Bar> bars;
      for (size_t c = 0; c < it->metrics.per_class_accuracy.size(); ++c) {
        const double a = it->metrics.per_class_accuracy[c];
        bars.push_back({c < r.class_names.size() ? r.class_names[c] : std::to_string(c), a, format_double("%.4f", a)});
      }
      out += svg::bar_chart("accuracy per class", bars);
    }
    return out + "</div>\n";
  }
  return "";
}

std::string sensitivity(const Report& r) {
  std::string out;
  for (const auto& [model, s] : r.sensitivity) {
    std::vector<svg::Series> series;
    for (const auto& [tensor, accs] : s.tensors) series.push_back({tensor, s.levels, accs});
    if (!s.levels.empty()) {
      series.push_back(
          {"baseline", {s.levels.front(), s.levels.back()}, {s.baseline_accuracy, s.baseline_accuracy}, true});
    }
    const bool channels = s.structure == "channels";
    out += cat("<p class=\"meta\">", html_escape(model), ": accuracy on ", html_escape(s.split), " data with ",
               channels ? "one layer's output channels" : "one tensor", " pruned at a time",
               s.weights.empty() ? "" : cat(" (weights <code>", html_escape(s.weights), "</code>)"), "</p>\n");
    out +=
        "<div class=\"charts\">" +
        svg::line_chart(cat("pruning sensitivity of ", model),
                        {channels ? "share of the one layer's channels pruned" : "sparsity of the one pruned tensor"},
                        {"accuracy"}, series) +
        "</div>\n";
  }
  return out.empty() ? out : "<h2>Pruning sensitivity</h2>\n" + out;
}

std::string modifiers(const Report& r) {
  std::string out;
  for (const auto& s : r.stages) {
    if (!s.modifiers || s.modifiers->empty()) continue;
    out += cat("<h3>Stage ", html_escape(stage_name(s)),
               "</h3><table><tr><th>modifier</th><th>epochs</th><th>settings</th></tr>\n");
    for (const auto& m : *s.modifiers) {
      std::vector<std::string> settings;
      for (const auto& [k, v] : m.summary->settings()) settings.push_back(k + " " + v);
      out += cat("<tr><td class=\"l\">", html_escape(m.kind()), "</td><td>", format_double("%g", m.window.start_epoch),
                 "–", m.window.end_epoch < 0 ? std::string("end") : format_double("%g", m.window.end_epoch),
                 "</td><td class=\"l\">", html_escape(core::join(settings, ", ")), "</td></tr>\n");
    }
    out += "</table>\n";
  }
  for (const auto& s : r.stages) {
    for (const auto& m : s.modifiers.value_or(std::vector<train::ModifierRecord>{})) out += m.summary->html(s.view());
    for (const auto& section : s.sections) out += section->html(s.view());
  }
  return out.empty() ? out : "<h2>Modifiers, distillation and quantization</h2>\n" + out;
}

std::string environment(const Report& r) {
  std::string out = "<h2>Environment and recipe</h2>\n<table>";
  const auto& e = r.environment;
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{{"shrink", e.shrink_version},
                                                                             {"LibTorch", e.torch_version},
                                                                             {"device", e.device},
                                                                             {"threads", std::to_string(e.threads)},
                                                                             {"CPU", e.cpu},
                                                                             {"recipe file", r.recipe.path},
                                                                             {"recipe sha256", r.recipe.sha256}}) {
    out += "<tr><th>" + html_escape(k) + "</th><td class=\"l\">" + html_escape(v) + "</td></tr>";
  }
  out += "</table>\n";
  if (r.recipe.overrides.empty()) {
    out += "<p>No <code>--set</code> overrides.</p>\n";
  } else {
    out += "<p>Overrides given with <code>--set</code>:</p><ul>";
    for (const auto& o : r.recipe.overrides) out += "<li><code>" + html_escape(o) + "</code></li>";
    out += "</ul>\n";
  }
  if (!r.recipe.effective.empty()) {
    YAML::Emitter yaml;
    yaml << core::json_to_yaml(r.recipe.effective);
    out += "<p>The effective recipe (defaults filled, overrides applied):</p><pre>" + html_escape(yaml.c_str()) +
           "</pre>\n";
  }
  out += "<h2>Artifacts</h2><ul>";
  for (const auto& s : r.stages) {
    for (const auto& [format, path] : s.artifacts)
      out += cat("<li>stage ", s.index, " ", html_escape(format), ": <code>", html_escape(path), "</code></li>");
  }
  return out + "</ul>\n";
}

}  // namespace

std::string to_html(const Report& r) {
  std::string body =
      cat("<h1>shrink report: ", html_escape(r.recipe.name), "</h1>\n<p class=\"meta\">recipe <code>",
          html_escape(r.recipe.path), "</code> · shrink ", html_escape(r.environment.shrink_version), " · LibTorch ",
          html_escape(r.environment.torch_version), " · ", html_escape(r.environment.device), ", ",
          r.environment.threads, " threads · ", html_escape(r.environment.cpu), " · latency timed on ",
          html_escape(r.environment.latency_inputs), "</p>\n");
  body += "<h2>Stages</h2>\n" + stage_table(r);
  if (!r.stages.empty()) body += stage_charts(r);
  body += "<h2>Latency</h2>\n" + latency_table(r);
  body += training_curves(r) + layer_sparsity(r) + confusion(r) + sensitivity(r) + modifiers(r) + environment(r);
  return html::page("shrink report: " + r.recipe.name, body);
}

}  // namespace shrink::report
