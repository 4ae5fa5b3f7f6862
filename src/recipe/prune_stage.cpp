// Prune stage: recipe body → PruneOptions (+ TrainerOptions for fine-tuning) → L1Pruner.
#include "recipe/prune_stage.h"

#include "compress/prune/l1_pruner.h"
#include "core/error.h"
#include "recipe/train_stage.h"
#include "train/trainer.h"

namespace shrink::recipe {

using core::cat;
namespace prune = compress::prune;

namespace {

SchemaPtr schedule_schema_for_pruning() {
  return tagged_map({with_default("kind", one_of({"oneshot", "iterative", "agp"}), "oneshot"),
                     with_default("start_epoch", number(0), 0.0)},
                    "kind",
                    {{"oneshot", {}},
                     {"iterative", {required("end_epoch", number(0, std::nullopt, true)), with_default("rounds", integer(1, 1000), 3)}},
                     {"agp",
                      {required("end_epoch", number(0, std::nullopt, true)), with_default("frequency", integer(1), 100),
                       with_default("initial_sparsity", number(0, 0.99), 0.0)}}});
}

nlohmann::json layers_json(const std::vector<prune::LayerSparsity>& layers) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& l : layers) {
    out.push_back({{"name", l.name}, {"shape", l.shape}, {"numel", l.numel}, {"nonzero", l.nonzero},
                   {"target", l.target}, {"sparsity", l.sparsity}});
  }
  return out;
}

class PruneStage : public Stage {
 public:
  PruneStage(std::string model, prune::PruneOptions prune, train::TrainerOptions finetune)
      : model_(std::move(model)), prune_(std::move(prune)), finetune_(std::move(finetune)) {
    prune::validate(prune_);
    train::validate(finetune_);
    const auto& s = prune_.schedule();
    if (s.kind() != "oneshot" && s.end_epoch() > static_cast<double>(finetune_.epochs())) {
      throw core::UsageError(cat("schedule.end_epoch (", s.end_epoch(), ") is past the fine-tuning run (finetune.epochs: ",
                                 finetune_.epochs(), ")"));
    }
    if (s.start_epoch() > 0 && s.start_epoch() >= static_cast<double>(finetune_.epochs())) {
      throw core::UsageError(cat("schedule.start_epoch (", s.start_epoch(), ") must fall inside the fine-tuning run"));
    }
  }

  const std::string& model() const override { return model_; }

  void check(torch::nn::Module& model) const override { prune::select_parameters(model, prune_); }

  nlohmann::json run(StageContext& ctx) override {
    auto& slot = ctx.models->at(model_);
    auto pruner = std::make_shared<prune::L1Pruner>(slot.model.ptr(), prune_);
    nlohmann::json details;
    if (finetune_.epochs() == 0) {
      pruner->prune_to_fraction_of_target(1.0);
    } else {
      train::Trainer trainer(slot.model, for_stage(finetune_, ctx, "prune " + model_));
      trainer.add_callback(pruner);
      const auto r = trainer.fit(ctx.data->train, ctx.data->val);
      details["training"] = training_json(r);
    }
    details["pruning"] = {{"method", "l1"}, {"scope", prune_.scope()}, {"target", prune_.sparsity()},
                          {"schedule", prune_.schedule().kind()}, {"sparsity", pruner->sparsity()},
                          {"layers", layers_json(pruner->layers())}};
    return details;
  }

 private:
  std::string model_;
  prune::PruneOptions prune_;
  train::TrainerOptions finetune_;
};

}  // namespace

StageKind prune_stage_kind() {
  auto schema = map_of({required("model", reference("models")), with_default("method", one_of({"l1"}), "l1"),
                        with_default("scope", one_of({"layer", "global"}), "layer"),
                        required("sparsity", number(0, 0.999)), optional("include", list_of(string(), 1)),
                        optional("exclude", list_of(string(), 1)), optional("overrides", dict_of(number(0, 0.999))),
                        with_default_node("schedule", schedule_schema_for_pruning(), YAML::Node(YAML::NodeType::Map)),
                        with_default_node("finetune", finetune_schema(), YAML::Node(YAML::NodeType::Map))});
  return StageKind{"prune", schema, [](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     prune::PruneOptions p;
                     p.sparsity(n["sparsity"].as<double>()).scope(n["scope"].as<std::string>());
                     if (n["include"]) p.include(n["include"].as<std::vector<std::string>>());
                     if (n["exclude"]) p.exclude(n["exclude"].as<std::vector<std::string>>());
                     if (n["overrides"]) {
                       std::vector<std::pair<std::string, double>> ov;
                       for (const auto& kv : n["overrides"]) ov.emplace_back(kv.first.Scalar(), kv.second.as<double>());
                       p.overrides(ov);
                     }
                     const auto s = n["schedule"];
                     prune::PruneScheduleOptions so;
                     so.kind(s["kind"].as<std::string>()).start_epoch(s["start_epoch"].as<double>());
                     if (s["end_epoch"]) so.end_epoch(s["end_epoch"].as<double>());
                     if (s["rounds"]) so.rounds(s["rounds"].as<int64_t>());
                     if (s["frequency"]) so.frequency(s["frequency"].as<int64_t>());
                     if (s["initial_sparsity"]) so.initial_sparsity(s["initial_sparsity"].as<double>());
                     p.schedule(so);
                     return std::make_unique<PruneStage>(n["model"].as<std::string>(), p, parse_training(n["finetune"]));
                   }};
}

}  // namespace shrink::recipe
