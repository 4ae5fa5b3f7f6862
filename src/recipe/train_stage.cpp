// Train stage: recipe body → TrainerOptions → Trainer::fit.
#include "recipe/train_stage.h"

#include "core/error.h"
#include "data/dataset.h"
#include "train/trainer.h"

namespace shrink::recipe {

using core::cat;

namespace {

SchemaPtr optimizer_schema() {
  const auto wd = with_default("weight_decay", number(0), 0.0);
  const auto adam_fields = std::vector<Field>{with_default("beta1", number(0, 0.999999), 0.9),
                                              with_default("beta2", number(0, 0.999999), 0.999),
                                              with_default("eps", number(0, std::nullopt, true), 1e-8)};
  return tagged_map({with_default("name", one_of({"sgd", "adam", "adamw"}), "sgd"),
                     with_default("lr", number(0, std::nullopt, true), 0.01), wd},
                    "name",
                    {{"sgd", {with_default("momentum", number(0, 0.999999), 0.9), with_default("nesterov", boolean(), false)}},
                     {"adam", adam_fields},
                     {"adamw", adam_fields}});
}

SchemaPtr schedule_schema() {
  return tagged_map({with_default("name", one_of({"constant", "step", "cosine"}), "constant"),
                     with_default("warmup_epochs", number(0), 0.0)},
                    "name",
                    {{"constant", {}},
                     {"step", {with_default("step_size", integer(1), 10), with_default("gamma", number(0, std::nullopt, true), 0.1)}},
                     {"cosine", {with_default("min_lr", number(0), 0.0)}}});
}

train::OptimizerOptions parse_optimizer(const YAML::Node& n) {
  train::OptimizerOptions o;
  o.name(n["name"].as<std::string>()).lr(n["lr"].as<double>()).weight_decay(n["weight_decay"].as<double>());
  if (o.name() == "sgd") {
    o.momentum(n["momentum"].as<double>()).nesterov(n["nesterov"].as<bool>());
  } else {
    o.beta1(n["beta1"].as<double>()).beta2(n["beta2"].as<double>()).eps(n["eps"].as<double>());
  }
  return o;
}

train::LrScheduleOptions parse_schedule(const YAML::Node& n) {
  train::LrScheduleOptions o;
  o.name(n["name"].as<std::string>()).warmup_epochs(n["warmup_epochs"].as<double>());
  if (o.name() == "step") o.step_size(n["step_size"].as<int64_t>()).gamma(n["gamma"].as<double>());
  if (o.name() == "cosine") o.min_lr(n["min_lr"].as<double>());
  return o;
}

}  // namespace

std::vector<Field> training_fields(int64_t epochs_default) {
  return {with_default("epochs", integer(0), epochs_default), with_default("batch_size", integer(1), 128),
          with_default_node("optimizer", optimizer_schema(), YAML::Node(YAML::NodeType::Map)),
          with_default_node("schedule", schedule_schema(), YAML::Node(YAML::NodeType::Map)),
          with_default("label_smoothing", number(0, 0.99), 0.0), with_default("grad_clip", number(0), 0.0)};
}

SchemaPtr finetune_schema() { return map_of(training_fields(0)); }

train::TrainerOptions parse_training(const YAML::Node& n) {
  train::TrainerOptions o;
  o.epochs(n["epochs"].as<int64_t>())
      .batch_size(n["batch_size"].as<int64_t>())
      .optimizer(parse_optimizer(n["optimizer"]))
      .schedule(parse_schedule(n["schedule"]))
      .label_smoothing(n["label_smoothing"].as<double>())
      .grad_clip_norm(n["grad_clip"].as<double>());
  return o;
}

namespace {

nlohmann::json epochs_json(const std::vector<train::EpochSummary>& epochs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : epochs) {
    out.push_back({{"epoch", e.epoch + 1}, {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
                   {"val_loss", e.val_loss}, {"val_accuracy", e.val_accuracy}, {"lr", e.lr}, {"seconds", e.seconds},
                   {"samples_per_s", e.samples_per_s}});
  }
  return out;
}

class TrainStage : public Stage {
 public:
  TrainStage(std::string model, train::TrainerOptions options) : model_(std::move(model)), options_(std::move(options)) {
    train::validate(options_);
  }

  const std::string& model() const override { return model_; }

  nlohmann::json run(StageContext& ctx) override {
    auto& slot = ctx.models->at(model_);
    train::Trainer trainer(slot.model, for_stage(options_, ctx, "train " + model_));
    return {{"training", training_json(trainer.fit(ctx.data->train, ctx.data->val))}};
  }

 private:
  std::string model_;
  train::TrainerOptions options_;
};

}  // namespace

train::TrainerOptions for_stage(train::TrainerOptions options, const StageContext& ctx, const std::string& label) {
  options.seed(ctx.seed)
      .checkpoint_path((ctx.work_dir / "checkpoint.pt").string())
      .resume(ctx.resume)
      .progress(ctx.progress)
      .label(cat("[", ctx.index, "] ", label));
  return options;
}

nlohmann::json training_json(const train::FitResult& r) {
  return {{"epochs", epochs_json(r.epochs)}, {"resumed", r.resumed}, {"steps", r.global_step}};
}

StageKind train_stage_kind() {
  auto fields = training_fields(10);
  fields.insert(fields.begin(), required("model", reference("models")));
  return StageKind{"train", map_of(fields), [](const YAML::Node& n) -> std::unique_ptr<Stage> {
                     return std::make_unique<TrainStage>(n["model"].as<std::string>(), parse_training(n));
                   }};
}

}  // namespace shrink::recipe
