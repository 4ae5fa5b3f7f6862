// Recipe keys of the library options structs, each bound to its TORCH_ARG member.
#include "recipe/option_specs.h"

namespace shrink::recipe {


namespace prune = compress::prune;

namespace {

constexpr double kBelowOne = 0.999999;

SchemaPtr positive() { return number(0, std::nullopt, /*min_exclusive=*/true); }

}  // namespace

const OptionsSpec<train::OptimizerOptions>& optimizer_spec() {
  using O = train::OptimizerOptions;
  static const OptionsSpec<O> spec(
      {SHRINK_OPTION(O, name, one_of({"sgd", "adam", "adamw"})),
       SHRINK_OPTION(O, lr, positive(), "base learning rate"),
       SHRINK_OPTION(O, weight_decay, number(0)),
       only_for({"sgd"}, SHRINK_OPTION(O, momentum, number(0, kBelowOne))),
       only_for({"sgd"}, SHRINK_OPTION(O, nesterov, boolean())),
       only_for({"adam", "adamw"}, SHRINK_OPTION(O, beta1, number(0, kBelowOne))),
       only_for({"adam", "adamw"}, SHRINK_OPTION(O, beta2, number(0, kBelowOne))),
       only_for({"adam", "adamw"}, SHRINK_OPTION(O, eps, positive()))},
      "name");
  return spec;
}

const OptionsSpec<train::LrScheduleOptions>& lr_schedule_spec() {
  using O = train::LrScheduleOptions;
  static const OptionsSpec<O> spec(
      {SHRINK_OPTION(O, name, one_of({"constant", "step", "cosine"})),
       SHRINK_OPTION(O, warmup_epochs, number(0), "linear ramp to lr over these epochs (fractions allowed)"),
       only_for({"step"}, SHRINK_OPTION(O, step_size, integer(1), "epochs between decays")),
       only_for({"step"}, SHRINK_OPTION(O, gamma, positive(), "decay factor")),
       only_for({"cosine"}, SHRINK_OPTION(O, min_lr, number(0), "final learning rate"))},
      "name");
  return spec;
}

const OptionsSpec<data::AugmentOptions>& augment_spec() {
  using O = data::AugmentOptions;
  static const OptionsSpec<O> spec({SHRINK_OPTION(O, hflip, boolean(), "mirror left-right, each sample with probability 1/2"),
                                    SHRINK_OPTION(O, shift, integer(0, 16), "translate up to this many pixels each way")});
  return spec;
}

const OptionsSpec<train::TrainerOptions>& training_spec() {
  using O = train::TrainerOptions;
  static const OptionsSpec<O> spec({SHRINK_OPTION(O, epochs, integer(0)), SHRINK_OPTION(O, batch_size, integer(1)),
                                    SHRINK_NESTED(O, optimizer, optimizer_spec()),
                                    SHRINK_NESTED(O, schedule, lr_schedule_spec()),
                                    SHRINK_OPTION(O, label_smoothing, number(0, 0.99)),
                                    SHRINK_OPTION(O, grad_clip, number(0), "max global gradient L2 norm; 0 = off"),
                                    SHRINK_OPTION(O, precision, one_of({"fp32", "bf16", "fp16"}),
                                                  "autocast dtype of the forward pass and loss; fp16 (CUDA only) adds loss scaling"),
                                    SHRINK_NESTED(O, augment, augment_spec())});
  return spec;
}

const OptionsSpec<prune::PruneScheduleOptions>& prune_schedule_spec() {
  using O = prune::PruneScheduleOptions;
  static const OptionsSpec<O> spec(
      {SHRINK_OPTION(O, kind, one_of({"oneshot", "iterative", "agp"})),
       SHRINK_OPTION(O, start_epoch, number(0), "fractions allowed"),
       only_for({"iterative", "agp"}, required_key(SHRINK_OPTION(O, end_epoch, positive()))),
       only_for({"iterative"}, SHRINK_OPTION(O, rounds, integer(1, 1000))),
       only_for({"agp"}, SHRINK_OPTION(O, frequency, integer(1), "steps between mask updates")),
       only_for({"agp"}, SHRINK_OPTION(O, initial_sparsity, number(0, 0.99)))},
      "kind");
  return spec;
}

const OptionsSpec<prune::PruneOptions>& prune_spec() {
  using O = prune::PruneOptions;
  // Overrides are a YAML map (regex → sparsity) kept in the file's order.
  auto overrides = Binding<O>{
      "overrides", dict_of(number(0, 0.999)),
      [](const O& o) {
        YAML::Node n(YAML::NodeType::Map);
        for (const auto& [pattern, s] : o.overrides()) n[pattern] = shortest_number(s);
        return n;
      },
      [](O& o, const YAML::Node& n) {
        prune::SparsityOverrides ov;
        for (const auto& kv : n) ov.emplace_back(kv.first.Scalar(), kv.second.as<double>());
        o.overrides(ov);
      },
      false, {}, "regex → sparsity; the first match wins"};
  static const OptionsSpec<O> spec(
      {required_key(SHRINK_OPTION(O, sparsity, number(0, 0.999), "target fraction of zeros")),
       SHRINK_OPTION(O, scope, one_of({"layer", "global"}), "global: one threshold across the selected tensors"),
       SHRINK_OPTION(O, include, list_of(string()), "regexes; none = every weight of rank >= 2"),
       SHRINK_OPTION(O, exclude, list_of(string())), overrides,
       SHRINK_NESTED(O, schedule, prune_schedule_spec())});
  return spec;
}

const OptionsSpec<data::SyntheticOptions>& synthetic_spec() {
  using O = data::SyntheticOptions;
  static const OptionsSpec<O> spec({SHRINK_OPTION(O, samples, integer(1)), SHRINK_OPTION(O, test_samples, integer(1)),
                                    SHRINK_OPTION(O, classes, integer(2, 100000)),
                                    SHRINK_OPTION(O, shape, list_of(integer(1), 1)),
                                    SHRINK_OPTION(O, noise, number(0), "std of samples around their class prototype")});
  return spec;
}

const OptionsSpec<report::LatencyOptions>& latency_spec() {
  using O = report::LatencyOptions;
  static const OptionsSpec<O> spec(
      {recipe::bind<O>("latency_batch_sizes", list_of(integer(1, 65536), 1), [](const O& o) { return o.batch_sizes(); },
               [](O& o, std::vector<int64_t> v) { o.batch_sizes(std::move(v)); }),
       SHRINK_OPTION(O, warmup, integer(0, 100000)), SHRINK_OPTION(O, iterations, integer(1, 1000000)),
       SHRINK_OPTION(O, fast_path, recipe::boolean(),
                     "evaluate and time on the fastest correct path (oneDNN conv, GEMV, CSR); false: the module's own forward")});
  return spec;
}

}  // namespace shrink::recipe
