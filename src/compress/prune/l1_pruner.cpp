// L1Pruner: selection, mask buffers, schedules and the trainer hooks.
#include "compress/prune/l1_pruner.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <set>

#include "compress/prune/magnitude.h"
#include "core/error.h"
#include "core/format.h"
#include "core/log.h"
#include "core/pattern.h"
#include "core/registration.h"
#include "models/cost.h"
#include "models/inference_plan.h"
#include "models/restore.h"

namespace shrink::compress::prune {

using core::cat;

namespace {

std::string names_list(const torch::nn::Module& module) {
  std::string out;
  for (const auto& p : module.named_parameters()) out += "\n  " + p.key() + " " + cat(p.value().sizes());
  return out;
}

// The module owning parameter `name` and the parameter's leaf name.
std::pair<std::shared_ptr<torch::nn::Module>, std::string> owner_of(torch::nn::Module& root, const std::string& name) {
  const auto dot = name.rfind('.');
  const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
  if (dot == std::string::npos) return {root.shared_from_this(), leaf};
  const auto modules = root.named_modules();
  const auto* found = modules.find(name.substr(0, dot));
  SHRINK_CHECK(found, "no module owns parameter '", name, "'");
  return {*found, leaf};
}

}  // namespace

const config::OptionsSpec<PruneScheduleOptions>& prune_schedule_spec() {
  using O = PruneScheduleOptions;
  using config::only_for;
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, kind, config::one_of<PruneScheduleKind>()),
       SHRINK_OPTION(O, start_epoch, config::number(0), "fractions allowed"),
       only_for({"iterative", "agp"}, config::required_key(SHRINK_OPTION(O, end_epoch, config::positive()))),
       only_for({"iterative"}, SHRINK_OPTION(O, rounds, config::integer(1, 1000))),
       only_for({"agp"}, SHRINK_OPTION(O, frequency, config::integer(1), "steps between mask updates")),
       only_for({"agp"}, SHRINK_OPTION(O, initial_sparsity, config::number(0, 0.99)))},
      "kind");
  return spec;
}

const config::OptionsSpec<PruneOptions>& prune_spec() {
  using O = PruneOptions;
  // Overrides are a YAML map (regex → sparsity) kept in the file's order.
  auto overrides = config::Binding<O>{"overrides",
                                      config::dict_of(config::fraction()),
                                      [](const O& o) {
                                        YAML::Node n(YAML::NodeType::Map);
                                        for (const auto& [pattern, s] : o.overrides())
                                          n[pattern] = config::shortest_number(s);
                                        return n;
                                      },
                                      [](O& o, const YAML::Node& n) {
                                        SparsityOverrides ov;
                                        for (const auto& kv : n)
                                          ov.emplace_back(kv.first.Scalar(), kv.second.as<double>());
                                        o.overrides(ov);
                                      },
                                      false,
                                      false,
                                      {},
                                      "regex → sparsity; the first match wins"};
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, method, config::one_of<PruneMethod>(), "channels ranked by their filter's L1 or L2 norm"),
       SHRINK_OPTION(O, structure, config::one_of<PruneStructure>(),
                     "channels: whole output channels, removed as the run ends; n:m: sparsity × m of each m "
                     "weights along the inputs (2:4 = m 4, sparsity 0.5)"),
       config::required_key(SHRINK_OPTION(O, sparsity, config::fraction(),
                                          "target fraction of zeros; channels: of each layer's channels")),
       config::only_for({"n:m"}, SHRINK_OPTION(O, m, config::integer(2, 64),
                                               "the group size; each group of m weights along a layer's inputs "
                                               "keeps m - sparsity × m")),
       SHRINK_OPTION(O, scope, config::one_of<PruneScope>(), "global: one threshold across the selected tensors"),
       config::only_for({"channels"},
                        SHRINK_OPTION(O, residual, config::one_of<ResidualChannels>(),
                                      "channels a residual add joins: whole leaves them; together prunes each "
                                      "in every layer that writes or reads it")),
       config::no_default(config::Binding<O>{
           "flops",
           config::fraction(),
           [](const O& o) { return o.flops() > 0 ? config::shortest_number(o.flops()) : YAML::Node(); },
           [](O& o, const YAML::Node& n) { o.flops(n.as<double>()); },
           false,
           false,
           {},
           "channels: the pruned model's FLOPs as a fraction of the dense model's; sparsity caps each layer"}),
       config::no_default(config::Binding<O>{
           "params",
           config::fraction(),
           [](const O& o) { return o.params() > 0 ? config::shortest_number(o.params()) : YAML::Node(); },
           [](O& o, const YAML::Node& n) { o.params(n.as<double>()); },
           false,
           false,
           {},
           "channels: the pruned model's Conv2d/Linear weights as a fraction of the dense model's; or flops"}),
       config::only_for(
           {"channels"},
           config::no_default(config::Binding<O>{
               "latency_ms",
               config::positive(),
               [](const O& o) { return o.latency_ms() > 0 ? config::shortest_number(o.latency_ms()) : YAML::Node(); },
               [](O& o, const YAML::Node& n) { o.latency_ms(n.as<double>()); },
               false,
               false,
               {},
               "channels: the pruned model's forward time in ms at latency_batch, "
               "measured on copies at each ratio tried; or flops or params"})),
       config::only_for({"channels"},
                        SHRINK_OPTION(O, latency_batch, config::integer(1, 65536), "the batch latency_ms is timed at")),
       SHRINK_OPTION(O, include, config::list_of(config::string()),
                     "regexes; none = every weight of rank >= 2 but embedding tables"),
       SHRINK_OPTION(O, exclude, config::list_of(config::string())), overrides,
       SHRINK_NESTED(O, schedule, prune_schedule_spec())},
      "structure");
  return spec;
}

void validate(const PruneOptions& o) {
  prune_spec().check(o, "prune");
  core::compile_patterns(o.include(), "prune: include");
  core::compile_patterns(o.exclude(), "prune: exclude");
  for (const auto& ov : o.overrides()) core::Pattern(ov.first, "prune: overrides");
  if (o.flops() < 0 || o.flops() >= 1) throw core::UsageError(cat("prune: flops must be in (0, 1), got ", o.flops()));
  if (o.params() < 0 || o.params() >= 1) {
    throw core::UsageError(cat("prune: params must be in (0, 1), got ", o.params()));
  }
  if (o.latency_ms() < 0) throw core::UsageError(cat("prune: latency_ms must be above 0, got ", o.latency_ms()));
  if (o.latency_batch() < 1) {
    throw core::UsageError(cat("prune: latency_batch must be at least 1, got ", o.latency_batch()));
  }
  if ((o.flops() > 0) + (o.params() > 0) + (o.latency_ms() > 0) > 1)
    throw core::UsageError("prune: give one cost target of flops, params and latency_ms, not several");
  for (const auto& [key, value] :
       {std::pair<const char*, double>{"flops", o.flops()}, {"params", o.params()}, {"latency_ms", o.latency_ms()}}) {
    if (value > 0 && (o.structure() != PruneStructure::kChannels || o.scope() != PruneScope::kLayer)) {
      throw core::UsageError(cat("prune: a ", key, " target is for structure: channels with scope: layer"));
    }
  }
  if (o.structure() == PruneStructure::kNM) {
    const double zeros = o.sparsity() * static_cast<double>(o.m());
    if (o.sparsity() <= 0 || std::abs(zeros - std::round(zeros)) > 1e-9) {
      throw core::UsageError(cat("prune: n:m prunes a whole number of each group's ", o.m(),
                                 " weights: sparsity × m must be a whole number above 0, got sparsity ", o.sparsity(),
                                 " (2:4 is m: 4, sparsity: 0.5)"));
    }
    if (o.scope() != PruneScope::kLayer) throw core::UsageError("prune: n:m prunes within each group: scope: layer");
    if (!o.overrides().empty()) throw core::UsageError("prune: n:m takes one pattern for every tensor: no overrides");
  }
  const auto& s = o.schedule();
  if (s.kind() != PruneScheduleKind::kOneShot && s.end_epoch() <= s.start_epoch()) {
    throw core::UsageError(
        cat("prune: schedule.end_epoch (", s.end_epoch(), ") must be after start_epoch (", s.start_epoch(), ")"));
  }
  if (s.initial_sparsity() > o.sparsity()) {
    throw core::UsageError(cat("prune: schedule.initial_sparsity must be at most sparsity (", o.sparsity(), "), got ",
                               s.initial_sparsity()));
  }
}

std::vector<std::string> select_parameters(const torch::nn::Module& module, const PruneOptions& o) {
  const auto params = module.named_parameters();
  std::vector<std::string> problems;
  const auto match_some = [&](const std::vector<std::string>& patterns, const char* what) {
    std::vector<core::Pattern> out;
    for (const auto& p : patterns) {
      out.emplace_back(p, what);
      bool any = false;
      for (const auto& param : params) any = any || out.back().search(param.key());
      if (!any) problems.push_back(cat(what, " '", core::cut_for_message(p), "' matches no parameter"));
    }
    return out;
  };
  const auto include = match_some(o.include(), "include");
  const auto exclude = match_some(o.exclude(), "exclude");
  std::vector<std::string> override_patterns;
  for (const auto& ov : o.overrides()) override_patterns.push_back(ov.first);
  match_some(override_patterns, "override");

  // An embedding table is looked up, not multiplied: pruning it saves no work and drops vocabulary.
  // Its weight is left out unless `include` names it.
  std::set<std::string> lookups;
  for (const auto& m : module.named_modules()) {
    if (dynamic_cast<const torch::nn::EmbeddingImpl*>(m.value().get()))
      lookups.insert(m.key().empty() ? "weight" : m.key() + ".weight");
  }
  std::vector<std::string> names;
  for (const auto& p : params) {
    const std::string& name = p.key();
    bool in = include.empty() ? (p.value().dim() >= 2 && name.size() >= 6 &&
                                 name.compare(name.size() - 6, 6, "weight") == 0 && !lookups.count(name))
                              : false;
    in = (in || core::search_any(include, name)) && !core::search_any(exclude, name);
    if (in) names.push_back(name);
  }
  if (names.empty() && problems.empty()) problems.push_back("the selection is empty");
  if (!problems.empty()) {
    std::string msg;
    for (const auto& p : problems) msg += (msg.empty() ? "" : "; ") + p;
    throw core::UsageError(cat(msg, ". The model's parameters are:", names_list(module)));
  }
  return names;
}

void ensure_mask_buffers(torch::nn::Module& module, const std::vector<std::string>& names) {
  const auto params = module.named_parameters();
  const auto buffers = module.named_buffers();
  for (const auto& name : names) {
    const std::string param = io::masked_parameter(name);
    if (param.empty() || buffers.contains(name)) continue;
    const auto* p = params.find(param);
    if (!p) continue;
    auto [owner, leaf] = owner_of(module, param);
    owner->register_buffer(leaf + io::kMaskSuffix, torch::ones_like(*p).detach());
  }
}

ChannelSelection select_channels(const torch::nn::Module& module, const PruneOptions& o) {
  const auto names = select_parameters(module, o);
  const auto selected = [&](const std::string& layer) {
    return std::find(names.begin(), names.end(), layer + ".weight") != names.end();
  };
  const auto graph = channel_graph(module, o.residual());
  ChannelSelection out;
  std::vector<SkippedLayer> skipped = graph.skipped;
  for (const auto& g : graph.groups) {
    // Residual channels go from every producer or none: a selection that leaves one out keeps
    // the others whole.
    std::vector<std::string> left_out;
    for (const auto& p : g.producers) {
      if (!selected(p)) left_out.push_back(p);
    }
    if (left_out.empty()) {
      out.groups.push_back(g);
    } else if (left_out.size() < g.producers.size()) {
      for (const auto& p : g.producers) {
        if (selected(p)) {
          skipped.push_back({p, cat("a residual add joins its channels with '", left_out.front(),
                                    "', which the selection leaves out")});
        }
      }
    }
  }
  const auto include = core::compile_patterns(o.include(), "prune: include");
  std::string reasons;
  for (const auto& s : skipped) {
    if (!selected(s.layer)) continue;
    if (core::search_any(include, s.layer + ".weight")) {
      throw core::UsageError(
          cat("structure: channels: the output channels of '", s.layer, "' cannot be removed: ", s.reason));
    }
    out.skipped.push_back(s);
    reasons += cat("\n  ", s.layer, ": ", s.reason);
  }
  if (out.groups.empty()) {
    throw core::UsageError(cat("structure: channels: no selected layer's output channels can be removed",
                               reasons.empty() ? " (the model holds no Conv2d or Linear in a LayerStack)" : ":",
                               reasons));
  }
  return out;
}

at::Tensor channel_keep(const at::Tensor& scores, int64_t k) {
  auto keep = at::ones_like(scores);
  k = std::min<int64_t>(k, scores.numel() - 1);
  if (k > 0) keep.index_fill_(0, std::get<1>(at::topk(scores, k, -1, /*largest=*/false)), 0);
  return keep;
}

at::Tensor channel_norms(const at::Tensor& weight, PruneMethod method) {
  const auto w = weight.detach().to(at::kFloat).reshape({weight.size(0), -1});
  return method == PruneMethod::kL2 ? w.pow(2).sum(1).sqrt() : w.abs().sum(1);
}

at::Tensor channel_scores(const std::vector<at::Tensor>& weights, PruneMethod method, const at::Tensor& alive) {
  SHRINK_CHECK(!weights.empty(), "channel_scores needs a producer's weight");
  if (weights.size() == 1) return channel_norms(weights.front(), method);
  at::Tensor sum;
  for (const auto& w : weights) {
    const auto norm = channel_norms(w, method);
    const auto mean = (alive.defined() ? norm.masked_select(alive.to(norm.device())) : norm).mean().clamp_min(1e-12f);
    sum = sum.defined() ? sum + norm / mean : norm / mean;
  }
  return sum / static_cast<double>(weights.size());
}

std::vector<std::string> channel_tensors(const ChannelGroup& group, const torch::nn::Module& module) {
  const auto params = module.named_parameters();
  std::vector<std::string> layers = group.producers;
  layers.insert(layers.end(), group.followers.begin(), group.followers.end());
  std::vector<std::string> out;
  for (const auto& layer : layers) {
    for (const char* leaf : {".weight", ".bias"}) {
      if (params.contains(layer + leaf)) out.push_back(layer + leaf);
    }
  }
  return out;
}

namespace {

// The selected tensors an n:m pattern fits, and those it does not with the reason; a UsageError
// when it fits none.
struct NmSelection {
  std::vector<std::string> names;
  std::vector<SkippedLayer> skipped;
};
NmSelection nm_selection(const torch::nn::Module& module, const PruneOptions& options) {
  NmSelection out;
  const auto params = module.named_parameters();
  for (const auto& n : select_parameters(module, options)) {
    const auto problem = nm_group_problem(params[n], options.m());
    if (problem.empty()) {
      out.names.push_back(n);
    } else {
      out.skipped.push_back({n, problem});
    }
  }
  if (out.names.empty()) {
    std::string why;
    for (const auto& k : out.skipped) why += cat(why.empty() ? "" : "; ", k.layer, ": ", k.reason);
    throw core::UsageError(cat("prune: n:m with m = ", options.m(), " fits none of the selected tensors (", why, ")"));
  }
  return out;
}

}  // namespace

L1Pruner::L1Pruner(std::shared_ptr<torch::nn::Module> module, PruneOptions options)
    : module_(std::move(module)), options_(std::move(options)) {
  SHRINK_CHECK(module_, "L1Pruner needs a module");
  validate(options_);
  if (options_.flops() > 0 || options_.params() > 0) {
    throw core::UsageError(cat("prune: a ", options_.flops() > 0 ? "flops" : "params",
                               " target needs the model and its input shape: L1Pruner(model, sample_shape, options)"));
  }
  std::vector<core::Pattern> overrides;
  for (const auto& ov : options_.overrides()) overrides.emplace_back(ov.first, "overrides");
  // The first matching override's target, or none.
  const auto override_of = [&](const std::string& name) -> std::optional<double> {
    for (size_t i = 0; i < overrides.size(); ++i) {
      if (overrides[i].search(name)) return options_.overrides()[i].second;
    }
    return std::nullopt;
  };
  const bool global = options_.scope() == PruneScope::kGlobal;
  // A mask buffer for every tensor in names_; then the module's parameters and buffers with them.
  const auto attach_masks = [this] {
    std::vector<std::string> mask_names;
    for (const auto& n : names_) mask_names.push_back(n + io::kMaskSuffix);
    ensure_mask_buffers(*module_, mask_names);
    return std::make_pair(module_->named_parameters(), module_->named_buffers());
  };
  if (options_.structure() == PruneStructure::kChannels) {
    // The FLOPs target needs a pass through the model: the other constructor.
    auto selection = select_channels(*module_, options_);
    groups_ = std::move(selection.groups);
    skipped_ = std::move(selection.skipped);
    // The report lists every skipped layer; a warning for those a user may have meant to prune
    // (not the model's output layer), and one line for the residual streams residual: whole keeps.
    std::string residual;
    for (const auto& s : skipped_) {
      if (s.residual) {
        residual += cat(residual.empty() ? "" : ", ", s.layer);
      } else if (s.reason != kModelOutputs) {
        core::log_warn("prune: channels of '", s.layer, "' left whole: ", s.reason);
      }
    }
    if (!residual.empty()) {
      core::log_warn("prune: residual: whole leaves the channels residual adds join whole in ", residual,
                     " (residual: together prunes them)");
    }
    // Producers' and followers' weights and biases: a pruned channel is zero wherever it goes.
    std::vector<std::vector<std::string>> tensors;
    for (const auto& g : groups_) {
      tensors.push_back(channel_tensors(g, *module_));
      names_.insert(names_.end(), tensors.back().begin(), tensors.back().end());
    }
    const auto [params, buffers] = attach_masks();
    for (size_t i = 0; i < groups_.size(); ++i) {
      const auto& g = groups_[i];
      // A residual group takes the override of the first of its producers (module order) one
      // matches: `overrides: {shortcut: 0.25}` sets the streams that have a projection.
      std::optional<double> own;
      for (const auto& p : g.producers) {
        if ((own = override_of(p + ".weight"))) break;
      }
      ChannelTarget t{{}, {}, own.value_or(options_.sparsity()), global && !own, own.has_value()};
      for (const auto& p : g.producers) t.weights.push_back(params[p + ".weight"]);
      for (const auto& n : tensors[i]) t.masked.emplace_back(params[n], buffers[n + io::kMaskSuffix]);
      channel_targets_.push_back(std::move(t));
    }
    return;
  }
  if (options_.structure() == PruneStructure::kNM) {
    auto grouped = nm_selection(*module_, options_);
    names_ = std::move(grouped.names);
    skipped_ = std::move(grouped.skipped);
    for (const auto& k : skipped_) core::log_warn("prune: n:m leaves '", k.layer, "' dense: ", k.reason);
  } else {
    names_ = select_parameters(*module_, options_);
  }
  const auto [params, buffers] = attach_masks();
  for (const auto& n : names_) {
    const auto own = override_of(n);
    targets_.push_back({n, params[n], buffers[n + io::kMaskSuffix], own.value_or(options_.sparsity()), global && !own});
  }
}

namespace {

// The model's multiply-adds (or weights) once each group keeps `kept[g]` of its channels: each
// weighted layer's dense count scaled by its output channels kept (producers, depthwise followers)
// and by its input channels kept (consumers).
double cost_with(const models::ModelCost& cost, const std::vector<ChannelGroup>& groups,
                 const std::vector<int64_t>& kept, int64_t models::LayerCost::*count) {
  double total = 0;
  for (const auto& l : cost.layers) {
    double scale = 1;
    for (size_t g = 0; g < groups.size(); ++g) {
      const double share = static_cast<double>(kept[g]) / static_cast<double>(groups[g].channels);
      const auto& p = groups[g].producers;
      const auto& f = groups[g].followers;
      if (std::find(p.begin(), p.end(), l.name) != p.end() || std::find(f.begin(), f.end(), l.name) != f.end()) {
        scale *= share;
      }
      for (const auto& c : groups[g].consumers) {
        if (c.layer == l.name) scale *= share;
      }
    }
    total += static_cast<double>(l.*count) * scale;
  }
  return total;
}

int64_t kept_at(double sparsity, int64_t channels) {
  return channels - std::min(entries_to_prune(sparsity, channels), channels - 1);
}

}  // namespace

LatencyProbe timed_latency_probe(std::function<models::Model()> fresh_copy, std::vector<int64_t> input_shape,
                                 int repeats) {
  SHRINK_CHECK(repeats > 0, "timed_latency_probe: repeats must be above 0, got ", repeats);
  SHRINK_CHECK(input_shape.size() >= 2 && input_shape.front() >= 1,
               "timed_latency_probe: the input shape is {batch, sample...}, got ", input_shape.size(), " dimensions");
  return [fresh_copy = std::move(fresh_copy), input_shape = std::move(input_shape),
          repeats](const std::vector<ChannelRemoval>& removals) {
    auto copy = fresh_copy();
    remove_channels(*copy.module, removals);
    copy.module->eval();
    const auto params = copy.module->parameters();
    const auto device = params.empty() ? c10::Device(c10::kCPU) : params.front().device();
    const auto x = models::placeholder_input(copy, input_shape, device);
    torch::NoGradGuard no_grad;
    // The path the report times and shrink deploys: the fastest correct one for this batch.
    const std::vector<int64_t> sample(input_shape.begin() + 1, input_shape.end());
    const auto plan = models::plan_inference(copy, sample, input_shape.front(), device);
    const auto sync = [&] {
      if (device.is_cuda()) torch::cuda::synchronize();
    };
    std::vector<double> ms;
    for (int i = 0; i < repeats + 2; ++i) {
      sync();
      const auto t0 = std::chrono::steady_clock::now();
      plan.forward(x);
      sync();
      const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - t0;
      if (i >= 2) ms.push_back(took.count());  // two warm-ups
    }
    std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
    return ms[ms.size() / 2];
  };
}

L1Pruner::L1Pruner(const models::Model& model, const std::vector<int64_t>& sample_shape, PruneOptions options,
                   LatencyProbe probe)
    : L1Pruner(model.module, PruneOptions(options).flops(0).params(0).latency_ms(0)) {
  options_ = std::move(options);
  if (options_.latency_ms() > 0) {
    if (!probe) throw core::UsageError("prune: a latency_ms target needs a LatencyProbe to time the pruned model");
    probe_ = std::move(probe);
    return;
  }
  const bool by_flops = options_.flops() > 0;
  const double target = by_flops ? options_.flops() : options_.params();
  if (target <= 0) return;
  const char* key = by_flops ? "flops" : "params";
  const auto cost = models::count_cost(model, sample_shape);
  if (!cost) {
    throw core::UsageError(
        cat("prune: ", key, ": the model's costs cannot be counted (its layers are not in LayerStacks)"));
  }
  const auto count = by_flops ? &models::LayerCost::macs : &models::LayerCost::weights;
  double dense = 0;
  for (const auto& l : cost->layers) dense += static_cast<double>(l.*count);
  // Groups with an override keep their own target; one ratio for the rest, the smallest that does.
  std::vector<int64_t> kept(groups_.size());
  const auto cost_at = [&](double ratio) {
    for (size_t g = 0; g < groups_.size(); ++g) {
      const auto& t = channel_targets_[g];
      kept[g] = kept_at(t.overridden ? t.sparsity : ratio, groups_[g].channels);
    }
    return cost_with(*cost, groups_, kept, count);
  };
  const double goal = target * dense;
  if (cost_at(options_.sparsity()) > goal) {
    throw core::UsageError(cat("prune: ", key, " ", target, " is out of reach with at most sparsity ",
                               options_.sparsity(), " of each layer's channels (that leaves ",
                               core::format_double("%.3f", cost_at(options_.sparsity()) / dense), " of the ",
                               by_flops ? "FLOPs" : "weights", "); raise sparsity"));
  }
  double lo = 0, hi = options_.sparsity();
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (cost_at(mid) <= goal ? hi : lo) = mid;
  }
  use_cost_ratio(hi);
}

void L1Pruner::use_cost_ratio(double ratio) {
  cost_sparsity_ = ratio;
  for (auto& t : channel_targets_) {
    if (!t.overridden) t.sparsity = ratio;
  }
}

void L1Pruner::choose_latency_ratio() {
  if (!probe_) return;
  const auto probe = std::move(probe_);
  probe_ = nullptr;  // searched once, even if it throws: a retry would time the same model again
  search_latency(probe);
}

void L1Pruner::search_latency(const LatencyProbe& probe) {
  const double goal = options_.latency_ms();
  // Which channels a candidate keeps does not change its time: the first ones.
  const auto at = [&](double ratio) {
    std::vector<ChannelRemoval> removals;
    for (size_t g = 0; g < groups_.size(); ++g) {
      const auto& t = channel_targets_[g];
      ChannelRemoval r{groups_[g], {}};
      r.kept.resize(static_cast<size_t>(kept_at(t.overridden ? t.sparsity : ratio, groups_[g].channels)));
      std::iota(r.kept.begin(), r.kept.end(), int64_t{0});
      removals.push_back(std::move(r));
    }
    return probe(removals);
  };
  dense_latency_ms_ = probe({});
  const double smallest = at(options_.sparsity());
  if (smallest > goal) {
    throw core::UsageError(cat("prune: latency_ms ", goal, " is out of reach with at most sparsity ",
                               options_.sparsity(), " of each layer's channels (that measured ",
                               core::format_double("%.3f", smallest), " ms at batch ", options_.latency_batch(),
                               ", the dense model ", core::format_double("%.3f", dense_latency_ms_),
                               " ms); raise sparsity or latency_ms"));
  }
  // Timings are noisy: a few halvings settle the ratio to 1/64 of the cap, fine at channel counts.
  double lo = 0, hi = options_.sparsity();
  target_latency_ms_ = smallest;
  if (dense_latency_ms_ <= goal) {
    hi = 0;
    target_latency_ms_ = dense_latency_ms_;
  }
  for (int i = 0; i < 6 && hi > 0; ++i) {
    const double mid = 0.5 * (lo + hi);
    const double ms = at(mid);
    if (ms <= goal) {
      hi = mid;
      target_latency_ms_ = ms;
    } else {
      lo = mid;
    }
  }
  use_cost_ratio(hi);
}

void L1Pruner::save(torch::serialize::OutputArchive& archive) const {
  if (options_.latency_ms() > 0 && !probe_) {
    archive.write("latency_sparsity",
                  torch::tensor({cost_sparsity_, dense_latency_ms_, target_latency_ms_}, torch::kDouble), true);
  }
}

void L1Pruner::load(torch::serialize::InputArchive& archive) {
  if (options_.latency_ms() <= 0) return;
  torch::Tensor ratio;
  if (!archive.try_read("latency_sparsity", ratio, true)) return;
  // Three values: the ratio and the dense and pruned times it was chosen on (one: the ratio alone).
  SHRINK_CHECK(ratio.numel() == 1 || ratio.numel() == 3, "prune: the checkpoint's latency_sparsity holds ",
               ratio.numel(), " values, not 3");
  const auto v = ratio.to(torch::kDouble).contiguous();
  const double r = v[0].item<double>();
  SHRINK_CHECK(r >= 0 && r <= options_.sparsity(), "prune: the checkpoint's latency ratio ", r, " is outside [0, ",
               options_.sparsity(), "]");
  use_cost_ratio(r);
  if (v.numel() == 3) {
    dense_latency_ms_ = v[1].item<double>();
    target_latency_ms_ = v[2].item<double>();
  }
  probe_ = nullptr;  // the interrupted run's choice stands: no search
}

void L1Pruner::check(const PruneOptions& options, torch::nn::Module& model) {
  if (options.structure() == PruneStructure::kChannels) {
    select_channels(model, options);
  } else if (options.structure() == PruneStructure::kNM) {
    nm_selection(model, options);
  } else {
    select_parameters(model, options);
  }
}

std::vector<std::string> L1Pruner::claims(const PruneOptions& options, const torch::nn::Module& model) {
  if (options.structure() == PruneStructure::kNM) return nm_selection(model, options).names;
  if (options.structure() != PruneStructure::kChannels) return select_parameters(model, options);
  std::vector<std::string> out;
  const auto params = model.named_parameters();
  for (const auto& g : select_channels(model, options).groups) {
    for (auto& n : channel_tensors(g, model)) out.push_back(std::move(n));
    for (const auto& c : g.consumers) {
      for (const char* leaf : {".weight", ".bias"}) {
        if (params.contains(c.layer + leaf)) out.push_back(c.layer + leaf);
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double L1Pruner::scheduled(double final_sparsity, double fraction) const {
  const auto& s = options_.schedule();
  if (s.kind() == PruneScheduleKind::kAgp) {
    const double si = std::min(s.initial_sparsity(), final_sparsity);
    return final_sparsity + (si - final_sparsity) * std::pow(1.0 - fraction, 3);
  }
  if (s.kind() == PruneScheduleKind::kIterative) return 1.0 - std::pow(1.0 - final_sparsity, fraction);
  return final_sparsity * fraction;
}

void L1Pruner::prune_to_fraction_of_target(double fraction) {
  SHRINK_CHECK(!finalized_, "prune after finalize()");
  SHRINK_CHECK(fraction >= 0 && fraction <= 1, "fraction must be in [0, 1], got ", fraction);
  if (options_.structure() == PruneStructure::kChannels) {
    prune_channels_to(fraction);
    return;
  }
  torch::NoGradGuard no_grad;
  if (options_.structure() == PruneStructure::kNM) {
    for (auto& t : targets_) {
      const auto zeros = entries_to_prune(scheduled(t.sparsity, fraction), options_.m());
      t.mask.copy_(nm_mask(t.weight, options_.m(), zeros, t.mask));
    }
    apply_masks();
    return;
  }
  std::vector<at::Tensor> pool_w, pool_m;
  std::vector<Target*> pool;
  for (auto& t : targets_) {
    if (t.in_global_pool) {
      pool.push_back(&t);
      pool_w.push_back(t.weight);
      pool_m.push_back(t.mask);
    } else {
      t.mask.copy_(l1_mask(t.weight, scheduled(t.sparsity, fraction), t.mask));
    }
  }
  if (!pool.empty()) {
    const auto masks = global_l1_masks(pool_w, scheduled(options_.sparsity(), fraction), pool_m);
    for (size_t i = 0; i < pool.size(); ++i) pool[i]->mask.copy_(masks[i]);
  }
  apply_masks();
}

void L1Pruner::prune_channels_to(double fraction) {
  choose_latency_ratio();
  torch::NoGradGuard no_grad;
  // Each channel's norm (its filter, or Linear row), pruned channels ranked first at -1.
  std::vector<at::Tensor> scores;
  for (const auto& t : channel_targets_) {
    const auto alive = t.masked.front().second.reshape({t.weights.front().size(0), -1}).ne(0).any(1);
    scores.push_back(channel_scores(t.weights, options_.method(), alive).masked_fill(alive.logical_not(), -1.0f));
  }
  std::vector<at::Tensor> keep(channel_targets_.size());
  std::vector<size_t> pool;
  for (size_t i = 0; i < channel_targets_.size(); ++i) {
    const auto& t = channel_targets_[i];
    if (t.in_global_pool) {
      pool.push_back(i);
    } else {
      keep[i] = channel_keep(scores[i], entries_to_prune(scheduled(t.sparsity, fraction), scores[i].numel()));
    }
  }
  if (!pool.empty()) {
    // One threshold over norms divided by their layer's mean over its live channels.
    std::vector<at::Tensor> normalised;
    int64_t total = 0;
    for (const size_t i : pool) {
      const auto live = scores[i].ge(0);
      const auto mean = scores[i].masked_select(live).mean().clamp_min(1e-12f);
      normalised.push_back(at::where(live, scores[i] / mean, scores[i]));
      total += scores[i].numel();
    }
    const auto all = at::cat(normalised);
    auto kept = at::ones_like(all);
    const int64_t k = entries_to_prune(scheduled(options_.sparsity(), fraction), total);
    if (k > 0) kept.index_fill_(0, std::get<1>(at::topk(all, k, -1, false)), 0);
    int64_t offset = 0;
    for (size_t p = 0; p < pool.size(); ++p) {
      const int64_t n = normalised[p].numel();
      auto layer_keep = kept.narrow(0, offset, n).clone();
      // Never a layer without channels: its best one stays.
      if (layer_keep.sum().item<double>() == 0) layer_keep.index_fill_(0, normalised[p].argmax().unsqueeze(0), 1);
      keep[pool[p]] = layer_keep;
      offset += n;
    }
  }
  for (size_t i = 0; i < channel_targets_.size(); ++i) {
    for (auto& [tensor, mask] : channel_targets_[i].masked) {
      std::vector<int64_t> shape(static_cast<size_t>(mask.dim()), 1);
      shape[0] = -1;
      mask.mul_(keep[i].to(mask.device(), mask.scalar_type()).view(shape));
    }
  }
  apply_masks();
}

void L1Pruner::apply_masks() {
  if (finalized_) return;  // finalize() hands the weights back to the user
  torch::NoGradGuard no_grad;
  for (auto& t : targets_) t.weight.mul_(t.mask);
  for (auto& t : channel_targets_) {
    for (auto& [tensor, mask] : t.masked) tensor.mul_(mask);
  }
}

double L1Pruner::schedule_fraction(int64_t step, int64_t steps_per_epoch) const {
  const auto& s = options_.schedule();
  const auto t0 = static_cast<int64_t>(std::llround(s.start_epoch() * static_cast<double>(steps_per_epoch)));
  if (s.kind() == PruneScheduleKind::kOneShot) return step == t0 ? 1.0 : -1.0;
  const auto t1 =
      std::max(t0 + 1, static_cast<int64_t>(std::llround(s.end_epoch() * static_cast<double>(steps_per_epoch))));
  if (step < t0 || step > t1) return -1.0;
  if (s.kind() == PruneScheduleKind::kIterative) {
    const double period = static_cast<double>(t1 - t0) / static_cast<double>(s.rounds());
    for (int64_t r = 0; r < s.rounds(); ++r) {
      if (step == t0 + static_cast<int64_t>(std::llround(period * static_cast<double>(r)))) {
        return static_cast<double>(r + 1) / static_cast<double>(s.rounds());
      }
    }
    return -1.0;
  }
  // agp: every `frequency` steps from t0, and once more at t1 so the final target is reached.
  if ((step - t0) % s.frequency() != 0 && step != t1) return -1.0;
  return std::min(1.0, static_cast<double>(step - t0) / static_cast<double>(t1 - t0));
}

void L1Pruner::step(int64_t global_step, int64_t steps_per_epoch) {
  const double f = schedule_fraction(global_step, steps_per_epoch);
  if (f >= 0) prune_to_fraction_of_target(f);
}

void L1Pruner::finalize() {
  if (finalized_) return;
  apply_masks();
  finalized_ = true;
}

std::vector<ChannelRemoval> L1Pruner::kept_channels() const {
  if (!removed_.empty()) return removed_;
  std::vector<ChannelRemoval> out;
  for (size_t i = 0; i < groups_.size(); ++i) {
    const auto& t = channel_targets_[i];
    const auto alive = t.masked.front().second.reshape({t.weights.front().size(0), -1}).ne(0).any(1).to(at::kCPU);
    ChannelRemoval r{groups_[i], {}};
    for (int64_t c = 0; c < alive.numel(); ++c) {
      if (alive[c].item<bool>()) r.kept.push_back(c);
    }
    out.push_back(std::move(r));
  }
  return out;
}

void L1Pruner::remove_pruned_channels() {
  if (options_.structure() != PruneStructure::kChannels || !removed_.empty()) return;
  finalize();
  layers_at_removal_ = channel_layers();
  auto kept = kept_channels();
  remove_channels(*module_, kept);
  removed_ = std::move(kept);
  // The old layers (and their masks) are gone with them.
  channel_targets_.clear();
}

void L1Pruner::finish(models::Model&) { remove_pruned_channels(); }

std::vector<LayerSparsity> L1Pruner::channel_layers() const {
  if (!layers_at_removal_.empty()) return layers_at_removal_;
  std::vector<LayerSparsity> out;
  const auto kept = kept_channels();
  // One line a producer: a residual group's channels are each of its producers'.
  for (size_t i = 0; i < groups_.size(); ++i) {
    const auto& t = channel_targets_[i];
    for (size_t p = 0; p < t.weights.size(); ++p) {
      LayerSparsity l;
      l.name = groups_[i].producers[p] + ".weight";
      l.shape = t.weights[p].sizes().vec();
      l.numel = t.weights[p].numel();
      l.nonzero = t.weights[p].count_nonzero().item<int64_t>();
      l.target = t.in_global_pool ? options_.sparsity() : t.sparsity;
      l.channels = groups_[i].channels;
      l.kept_channels = static_cast<int64_t>(kept[i].kept.size());
      l.sparsity = 1.0 - static_cast<double>(l.kept_channels) / static_cast<double>(l.channels);
      out.push_back(l);
    }
  }
  return out;
}

std::vector<LayerSparsity> L1Pruner::layers() const {
  if (options_.structure() == PruneStructure::kChannels) return channel_layers();
  std::vector<LayerSparsity> out;
  for (const auto& t : targets_) {
    LayerSparsity l;
    l.name = t.name;
    l.shape = t.weight.sizes().vec();
    l.numel = t.weight.numel();
    l.nonzero = t.weight.count_nonzero().item<int64_t>();
    l.target = t.in_global_pool ? options_.sparsity() : t.sparsity;
    l.sparsity = l.numel ? 1.0 - static_cast<double>(l.nonzero) / static_cast<double>(l.numel) : 0.0;
    out.push_back(l);
  }
  return out;
}

double L1Pruner::sparsity() const {
  int64_t numel = 0, nonzero = 0;
  for (const auto& l : layers()) {
    // Channels: the fraction of the layers' output channels pruned.
    numel += l.channels ? l.channels : l.numel;
    nonzero += l.channels ? l.kept_channels : l.nonzero;
  }
  return numel ? 1.0 - static_cast<double>(nonzero) / static_cast<double>(numel) : 0.0;
}

train::Window L1Pruner::window() const {
  const auto& s = options_.schedule();
  return {s.start_epoch(), s.kind() == PruneScheduleKind::kOneShot ? s.start_epoch() : s.end_epoch()};
}

std::string L1Pruner::fingerprint() const {
  std::string text = prune_spec().text(options_) + ";tensors=";
  for (const auto& t : targets_) text += cat(t.name, ":", t.sparsity, t.in_global_pool ? "g" : "", ",");
  for (size_t i = 0; i < groups_.size() && i < channel_targets_.size(); ++i) {
    text +=
        cat(groups_[i].name(), ":", channel_targets_[i].sparsity, channel_targets_[i].in_global_pool ? "g" : "", ",");
  }
  return text;
}

std::vector<models::Transform> L1Pruner::transforms() const {
  std::vector<std::string> masks;
  for (const auto& n : names_) masks.push_back(n + io::kMaskSuffix);
  std::vector<models::Transform> out{
      {kMaskTransform, {{"method", core::name_of(options_.method())}, {"masks", masks}}}};
  if (!removed_.empty()) out.push_back({kChannelTransform, to_json(removed_)});
  return out;
}

std::shared_ptr<const train::ModifierSummary> L1Pruner::summary() const {
  auto s = std::make_shared<PruneSummary>();
  s->method = core::name_of(options_.method());
  s->structure = core::name_of(options_.structure());
  if (options_.structure() == PruneStructure::kNM) {
    const auto zeros = entries_to_prune(options_.sparsity(), options_.m());
    s->pattern = cat(options_.m() - zeros, ":", options_.m());
  }
  s->flops_target = options_.flops();
  s->flops_sparsity = options_.flops() > 0 ? cost_sparsity_ : 0.0;
  s->params_target = options_.params();
  s->params_sparsity = options_.params() > 0 ? cost_sparsity_ : 0.0;
  s->latency_target_ms = options_.latency_ms();
  if (options_.latency_ms() > 0) {
    s->latency_sparsity = cost_sparsity_;
    s->latency_batch = options_.latency_batch();
    s->dense_latency_ms = dense_latency_ms_;
    s->pruned_latency_ms = target_latency_ms_;
  }
  s->skipped = skipped_;
  s->scope = core::name_of(options_.scope());
  s->target_sparsity = options_.sparsity();
  s->schedule = core::name_of(options_.schedule().kind());
  s->window = window();
  s->sparsity = sparsity();
  s->layers = layers();
  return s;
}

void L1Pruner::on_train_begin(train::Trainer&) {
  choose_latency_ratio();
  apply_masks();
}

void L1Pruner::on_step_begin(train::Trainer&, const train::StepInfo& s) { step(s.global_step, s.steps_per_epoch); }

void L1Pruner::on_step_end(train::Trainer&, const train::StepInfo&) { apply_masks(); }

std::shared_ptr<L1Pruner> L1Pruner::attach(const PruneOptions& options, train::ModifierContext& ctx) {
  if (options.flops() > 0 || options.params() > 0 || options.latency_ms() > 0) {
    SHRINK_CHECK(ctx.train, "prune: a cost target needs the training data's sample shape");
    LatencyProbe probe;
    if (options.latency_ms() > 0) {
      SHRINK_CHECK(ctx.copy_model, "prune: a latency_ms target needs copies of the model to time");
      probe =
          timed_latency_probe(ctx.copy_model, models::batch_shape(options.latency_batch(), ctx.train->sample_shape()));
    }
    return std::make_shared<L1Pruner>(ctx.model, ctx.train->sample_shape(), options, std::move(probe));
  }
  return std::make_shared<L1Pruner>(ctx.model.module, options);
}

void L1Pruner::check_epochs(const PruneOptions& options, int64_t epochs, const std::string& run) {
  const auto& s = options.schedule();
  if (s.kind() != PruneScheduleKind::kOneShot && s.end_epoch() > static_cast<double>(epochs)) {
    throw core::UsageError(cat("schedule.end_epoch (", s.end_epoch(), ") is past the ", run));
  }
  if (s.start_epoch() > 0 && s.start_epoch() >= static_cast<double>(epochs)) {
    throw core::UsageError(cat("schedule.start_epoch (", s.start_epoch(), ") must fall inside the ", run));
  }
}

SHRINK_REGISTER_MODIFIER(prune, L1Pruner)

// Files of pruned models rebuild their mask buffers before the weights load; a file without a
// description (a PyTorch state_dict) brings masks as `<param>_mask` entries, as
// torch.nn.utils.prune names them.
SHRINK_ON_LOAD(prune_mask_transform) {
  models::TransformKind kind;
  kind.apply = [](models::Model& m, const nlohmann::json& settings) {
    ensure_mask_buffers(*m.module, settings.at("masks").get<std::vector<std::string>>());
  };
  kind.implied_by = [](const io::StateDict& entries) -> std::optional<models::Transform> {
    const std::string suffix = "_mask";
    std::vector<std::string> masks;
    for (const auto& e : entries) {
      if (e.name.size() > suffix.size() && e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        masks.push_back(e.name);
      }
    }
    if (masks.empty()) return std::nullopt;
    return models::Transform{kMaskTransform, {{"masks", masks}}};
  };
  models::register_transform(kMaskTransform, kind);
}

}  // namespace shrink::compress::prune
