// JSON and Markdown serialisation of reports.
#include "report/report.h"

#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/format.h"
#include "report/html_report.h"

namespace shrink::report {

using core::cat;
using nlohmann::json;

json to_json(const Sensitivity& s) {
  json tensors = json::object();
  for (const auto& [name, accs] : s.tensors) tensors[name] = accs;
  return {{"weights", s.weights},     {"split", s.split},
          {"structure", s.structure}, {"baseline_accuracy", s.baseline_accuracy},
          {"levels", s.levels},       {"tensors", tensors}};
}

Sensitivity sensitivity_from_json(const json& j) {
  Sensitivity s;
  s.weights = j.value("weights", std::string());
  s.split = j.at("split").get<std::string>();
  s.structure = j.value("structure", std::string("weights"));
  s.baseline_accuracy = j.at("baseline_accuracy").get<double>();
  s.levels = j.at("levels").get<std::vector<double>>();
  for (const auto& [name, accs] : j.at("tensors").items()) {
    s.tensors.emplace_back(name, accs.get<std::vector<double>>());
    SHRINK_CHECK(s.tensors.back().second.size() == s.levels.size(), "sensitivity of '", name, "' has ",
                 s.tensors.back().second.size(), " accuracies for ", s.levels.size(), " levels");
  }
  return s;
}

namespace {

json stage_json(const StageReport& s) {
  json latency = json::array();
  for (const auto& l : s.metrics.latency) {
    latency.push_back({{"batch", l.batch},
                       {"p50_ms", l.p50_ms},
                       {"p90_ms", l.p90_ms},
                       {"p99_ms", l.p99_ms},
                       {"samples_per_s", l.samples_per_s},
                       {"path", l.path}});
  }
  json artifacts = json::object();
  for (const auto& [k, v] : s.artifacts) artifacts[k] = v;
  json layers = json::array();
  for (const auto& l : s.layers) {
    layers.push_back(
        {{"name", l.name}, {"shape", l.shape}, {"numel", l.numel}, {"nonzero", l.nonzero}, {"sparsity", l.sparsity}});
  }
  json st = {{"index", s.index},
             {"layers", layers},
             {"kind", s.kind},
             {"model", s.model},
             {"wall_s", s.wall_s},
             {"metrics",
              {{"accuracy", s.metrics.accuracy},
               {"loss", s.metrics.loss},
               {"params", s.metrics.params},
               {"nonzero_params", s.metrics.nonzero_params},
               {"sparsity", s.metrics.sparsity},
               {"size_bytes", s.metrics.size_bytes},
               {"flops", s.metrics.flops},
               {"latency", latency},
               {"per_class_accuracy", s.metrics.per_class_accuracy},
               {"confusion", s.metrics.confusion}}},
             {"artifacts", artifacts}};
  if (const auto& f = s.metrics.fidelity) {
    st["metrics"]["fidelity"] = {{"reference", f->reference},     {"samples", f->samples},
                                 {"mean_cosine", f->mean_cosine}, {"p5_cosine", f->p5_cosine},
                                 {"min_cosine", f->min_cosine},   {"spearman", f->spearman}};
  }
  if (s.training) st["training"] = s.training->to_json();
  if (s.modifiers) {
    json mods = json::array();
    for (const auto& m : *s.modifiers) mods.push_back(m.to_json());
    st["modifiers"] = mods;
  }
  for (const auto& section : s.sections) {
    SHRINK_CHECK(!st.contains(section->key()), "report section '", section->key(), "' would overwrite a report field");
    st[section->key()] = section->to_json();
  }
  return st;
}

StageReport stage_from_json(const json& st) {
  static const std::vector<std::string> kCore = {"index",     "kind",   "model",    "wall_s",   "metrics",
                                                 "artifacts", "layers", "training", "modifiers"};
  StageReport s;
  s.index = st.at("index").get<int64_t>();
  s.kind = st.at("kind").get<std::string>();
  s.model = st.at("model").get<std::string>();
  s.wall_s = st.at("wall_s").get<double>();
  const auto& m = st.at("metrics");
  s.metrics.accuracy = m.at("accuracy").get<double>();
  s.metrics.loss = m.at("loss").get<double>();
  s.metrics.params = m.at("params").get<int64_t>();
  s.metrics.nonzero_params = m.at("nonzero_params").get<int64_t>();
  s.metrics.sparsity = m.at("sparsity").get<double>();
  s.metrics.size_bytes = m.at("size_bytes").get<int64_t>();
  s.metrics.flops = m.value("flops", int64_t{0});
  if (m.contains("per_class_accuracy"))
    s.metrics.per_class_accuracy = m.at("per_class_accuracy").get<std::vector<double>>();
  if (m.contains("confusion")) s.metrics.confusion = m.at("confusion").get<std::vector<std::vector<int64_t>>>();
  if (m.contains("fidelity")) {
    const auto& f = m.at("fidelity");
    s.metrics.fidelity = FidelityStat{f.at("reference").get<std::string>(), f.at("samples").get<int64_t>(),
                                      f.at("mean_cosine").get<double>(),    f.at("p5_cosine").get<double>(),
                                      f.at("min_cosine").get<double>(),     f.at("spearman").get<double>()};
  }
  if (st.contains("training")) s.training = TrainingHistory::from_json(st.at("training"));
  if (st.contains("modifiers")) {
    s.modifiers.emplace();
    for (const auto& m : st.at("modifiers")) s.modifiers->push_back(train::ModifierRecord::from_json(m));
  }
  for (const auto& l : m.at("latency")) {
    s.metrics.latency.push_back({l.at("batch").get<int64_t>(), l.at("p50_ms").get<double>(),
                                 l.at("p90_ms").get<double>(), l.at("p99_ms").get<double>(),
                                 l.at("samples_per_s").get<double>(),
                                 // Reports written before paths were planned timed the plain one.
                                 l.value("path", std::string("plain"))});
  }
  for (const auto& [k, v] : st.at("artifacts").items()) s.artifacts[k] = v.get<std::string>();
  if (st.contains("layers")) {
    for (const auto& l : st.at("layers")) {
      s.layers.push_back({l.at("name").get<std::string>(), l.at("shape").get<std::vector<int64_t>>(),
                          l.at("numel").get<int64_t>(), l.at("nonzero").get<int64_t>(),
                          l.at("sparsity").get<double>()});
    }
  }
  for (const auto& [k, v] : st.items()) {
    if (std::find(kCore.begin(), kCore.end(), k) == kCore.end()) s.sections.push_back(train::read_section(k, v));
  }
  return s;
}

}  // namespace

json to_json(const Report& r) {
  json stages = json::array();
  for (const auto& s : r.stages) stages.push_back(stage_json(s));
  json out = {{"schema", kSchema},
              {"recipe",
               {{"name", r.recipe.name},
                {"path", r.recipe.path},
                {"sha256", r.recipe.sha256},
                {"effective", r.recipe.effective},
                {"overrides", r.recipe.overrides}}},
              {"environment",
               {{"shrink_version", r.environment.shrink_version},
                {"torch_version", r.environment.torch_version},
                {"device", r.environment.device},
                {"threads", r.environment.threads},
                {"cpu", r.environment.cpu},
                {"latency_inputs", r.environment.latency_inputs}}},
              {"class_names", r.class_names},
              {"stages", stages}};
  if (!r.initial.empty()) {
    json initial = json::array();
    for (const auto& s : r.initial) initial.push_back(stage_json(s));
    out["initial"] = initial;
  }
  if (!r.sensitivity.empty()) {
    json sens = json::object();
    for (const auto& [model, s] : r.sensitivity) sens[model] = to_json(s);
    out["sensitivity"] = sens;
  }
  return out;
}

Report report_from_json(const json& j) {
  try {
    SHRINK_CHECK(j.value("schema", "") == kSchema, "not a ", kSchema, " document (schema is '", j.value("schema", ""),
                 "')");
    Report r;
    const auto& rec = j.at("recipe");
    r.recipe.name = rec.at("name").get<std::string>();
    r.recipe.path = rec.at("path").get<std::string>();
    r.recipe.sha256 = rec.at("sha256").get<std::string>();
    // Older reports carry only the digest.
    r.recipe.effective = rec.value("effective", json::object());
    r.recipe.overrides = rec.value("overrides", std::vector<std::string>{});
    const auto& env = j.at("environment");
    r.environment.shrink_version = env.at("shrink_version").get<std::string>();
    r.environment.torch_version = env.at("torch_version").get<std::string>();
    r.environment.device = env.at("device").get<std::string>();
    r.environment.threads = env.at("threads").get<int64_t>();
    r.environment.cpu = env.at("cpu").get<std::string>();
    // Reports from before the key timed their latency on noise.
    r.environment.latency_inputs = env.value("latency_inputs", std::string(kLatencyOnNoise));
    if (j.contains("sensitivity")) {
      for (const auto& [model, s] : j.at("sensitivity").items()) r.sensitivity[model] = sensitivity_from_json(s);
    }
    if (j.contains("class_names")) r.class_names = j.at("class_names").get<std::vector<std::string>>();
    for (const auto& st : j.at("stages")) r.stages.push_back(stage_from_json(st));
    for (const auto& st : j.value("initial", json::array())) r.initial.push_back(stage_from_json(st));
    return r;
  } catch (const json::exception& e) {
    throw core::Error(cat("malformed report: ", e.what()));
  }
}

std::vector<const StageReport*> listed_rows(const Report& report) {
  std::vector<const StageReport*> rows;
  for (const auto& s : report.initial) rows.push_back(&s);
  for (const auto& s : report.stages) rows.push_back(&s);
  return rows;
}

std::string flops_text(int64_t flops) {
  if (flops <= 0) return "—";
  const double f = static_cast<double>(flops);
  if (f >= 1e9) return core::format_double("%.2f G", f / 1e9);
  if (f >= 1e6) return core::format_double("%.2f M", f / 1e6);
  if (f >= 1e3) return core::format_double("%.1f k", f / 1e3);
  return std::to_string(flops);
}

std::string row_number(const StageReport& row) { return row.index < 0 ? std::string("—") : std::to_string(row.index); }

std::string to_markdown(const Report& r) {
  std::string md = cat("# shrink report: ", r.recipe.name, "\n\n");
  md += cat("- recipe: `", r.recipe.path, "` (sha256 `", r.recipe.sha256.substr(0, 12), "`)\n");
  md += cat("- shrink ", r.environment.shrink_version, ", LibTorch ", r.environment.torch_version, ", device ",
            r.environment.device, ", ", r.environment.threads, " threads, CPU: ", r.environment.cpu,
            ", latency timed on ", r.environment.latency_inputs, "\n\n");
  const auto rows = listed_rows(r);
  md += "| # | stage | model | accuracy | loss | params | nonzero | sparsity | FLOPs | size | wall |\n";
  md += "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto* s : rows) {
    const auto& m = s->metrics;
    // Without labels there is no accuracy: the fidelity table below scores the stage.
    const auto figure = [&](double v) { return m.fidelity ? std::string("—") : core::format_double("%.4f", v); };
    md += cat("| ", row_number(*s), " | ", s->kind, " | ", s->model, " | ", figure(m.accuracy), " | ", figure(m.loss),
              " | ", m.params, " | ", m.nonzero_params, " | ", core::format_double("%.3f", m.sparsity), " | ",
              flops_text(m.flops), " | ", core::human_bytes(m.size_bytes), " | ",
              core::format_double("%.1f s", s->wall_s), " |\n");
  }
  if (std::any_of(rows.begin(), rows.end(), [](const StageReport* s) { return s->metrics.fidelity.has_value(); })) {
    md +=
        "\n## Embedding fidelity (test set, against the reference model as brought)\n\n| # | stage | model | "
        "reference | samples | mean cos | p5 cos | min cos | Spearman |\n|---|---|---|---|---|---|---|---|---|\n";
    for (const auto* s : rows) {
      const auto& f = s->metrics.fidelity;
      if (!f) continue;
      md += cat("| ", row_number(*s), " | ", s->kind, " | ", s->model, " | ", f->reference, " | ", f->samples, " | ",
                core::format_double("%.4f", f->mean_cosine), " | ", core::format_double("%.4f", f->p5_cosine), " | ",
                core::format_double("%.4f", f->min_cosine), " | ", core::format_double("%.4f", f->spearman), " |\n");
    }
  }
  if (!r.initial.empty()) {
    md +=
        "\n## Against the models as brought\n\n| # | stage | model | Δ accuracy | size ratio | p50 ratio "
        "|\n|---|---|---|---|---|---|\n";
    for (const auto& s : r.stages) {
      const auto base =
          std::find_if(r.initial.begin(), r.initial.end(), [&](const StageReport& i) { return i.model == s.model; });
      if (base == r.initial.end()) continue;
      std::string p50 = "—";
      if (!s.metrics.latency.empty() && !base->metrics.latency.empty() && s.metrics.latency[0].p50_ms > 0) {
        p50 = core::format_double("%.2fx", base->metrics.latency[0].p50_ms / s.metrics.latency[0].p50_ms) +
              cat(" @", s.metrics.latency[0].batch);
      }
      // Without labels the fidelity table holds the comparison (the reference is a model as brought).
      const auto delta = s.metrics.fidelity
                             ? std::string("—")
                             : core::format_double("%+.2f pt", 100 * (s.metrics.accuracy - base->metrics.accuracy));
      md += cat("| ", s.index, " | ", s.kind, " | ", s.model, " | ", delta, " | ",
                s.metrics.size_bytes > 0 ? core::format_double("%.2fx", static_cast<double>(base->metrics.size_bytes) /
                                                                            static_cast<double>(s.metrics.size_bytes))
                                         : std::string("—"),
                " | ", p50, " |\n");
    }
  }
  md +=
      "\n## Latency\n\n| # | model | batch | p50 ms | p90 ms | p99 ms | samples/s | path "
      "|\n|---|---|---|---|---|---|---|---|\n";
  for (const auto* s : rows) {
    for (const auto& l : s->metrics.latency) {
      md += cat("| ", row_number(*s), " | ", s->model, " | ", l.batch, " | ", core::format_double("%.3f", l.p50_ms),
                " | ", core::format_double("%.3f", l.p90_ms), " | ", core::format_double("%.3f", l.p99_ms), " | ",
                core::format_double("%.0f", l.samples_per_s), " | ", l.path, " |\n");
    }
  }
  if (!r.stages.empty() && !r.stages.back().metrics.per_class_accuracy.empty()) {
    const auto& s = r.stages.back();
    md += cat("\n## Per-class accuracy (stage ", s.index, ")\n\n| class | accuracy |\n|---|---|\n");
    for (size_t c = 0; c < s.metrics.per_class_accuracy.size(); ++c) {
      const std::string name = c < r.class_names.size() ? r.class_names[c] : std::to_string(c);
      md += cat("| ", name, " | ", core::format_double("%.4f", s.metrics.per_class_accuracy[c]), " |\n");
    }
  }
  for (const auto& s : r.stages) {
    if (s.layers.empty()) continue;
    md += cat("\n## Layers after stage ", s.index, " (", s.kind, " ", s.model,
              ")\n\n| tensor | shape | nonzero | sparsity |\n|---|---|---|---|\n");
    for (const auto& l : s.layers) {
      std::string shape;
      for (size_t i = 0; i < l.shape.size(); ++i) shape += (i ? "x" : "") + std::to_string(l.shape[i]);
      md += cat("| ", l.name, " | ", shape, " | ", l.nonzero, " / ", l.numel, " | ",
                core::format_double("%.3f", l.sparsity), " |\n");
    }
  }
  for (const auto& [model, s] : r.sensitivity) {
    const bool channels = s.structure == "channels";
    md += cat("\n## ", channels ? "Channel pruning" : "Pruning", " sensitivity of ", model, " (accuracy on ", s.split,
              " data; baseline ", core::format_double("%.4f", s.baseline_accuracy), ")\n\n| ",
              channels ? "layer" : "tensor", " |");
    for (double l : s.levels) md += cat(" ", core::format_double("%.0f%%", 100 * l), " |");
    md += "\n|---|";
    for (size_t i = 0; i < s.levels.size(); ++i) md += "---|";
    md += "\n";
    for (const auto& [tensor, accs] : s.tensors) {
      md += "| " + tensor + " |";
      for (double a : accs) md += cat(" ", core::format_double("%.4f", a), " |");
      md += "\n";
    }
  }
  for (const auto& s : r.stages) {
    if (!s.modifiers || s.modifiers->empty()) continue;
    md += cat("\n## Modifiers of stage ", s.index, " (", s.kind, " ", s.model,
              ")\n\n| # | modifier | epochs | target | reached |\n|---|---|---|---|---|\n");
    size_t i = 0;
    for (const auto& m : *s.modifiers) {
      const auto target = m.summary->target(), reached = m.summary->reached();
      md += cat("| ", i++, " | ", m.kind(), " | ", core::format_double("%g", m.window.start_epoch), "–",
                m.window.end_epoch < 0 ? std::string("end") : core::format_double("%g", m.window.end_epoch), " | ",
                target.empty() ? "—" : target, " | ", reached.empty() ? "—" : reached, " |\n");
    }
  }
  // What each modifier and the stage itself have to say, stage by stage.
  for (const auto& s : r.stages) {
    for (const auto& m : s.modifiers.value_or(std::vector<train::ModifierRecord>{}))
      md += m.summary->markdown(s.view());
    for (const auto& section : s.sections) md += section->markdown(s.view());
  }
  md += "\n## Artifacts\n\n";
  for (const auto& s : r.stages) {
    for (const auto& [fmt_name, path] : s.artifacts) md += cat("- stage ", s.index, " ", fmt_name, ": `", path, "`\n");
  }
  return md;
}

void write_report(const std::filesystem::path& dir, const Report& report) {
  core::write_text_atomically(dir / "report.json", to_json(report).dump(2) + "\n");
  core::write_text_atomically(dir / "report.md", to_markdown(report));
  core::write_text_atomically(dir / "report.html", to_html(report));
}

Report read_report(const std::filesystem::path& json_path) {
  const std::string text = core::read_text_file(json_path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw core::Error(cat(json_path.string(), ": not valid JSON: ", e.what()));
  }
  try {
    return report_from_json(j);
  } catch (const core::Error& e) {
    throw core::Error(cat(json_path.string(), ": ", e.what()));
  }
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

std::string torch_version() { return TORCH_VERSION; }

}  // namespace shrink::report
