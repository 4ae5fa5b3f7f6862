// Training histories: from the Trainer's epoch summaries, to and from report.json.
#include "train/history.h"

#include "train/trainer.h"

namespace shrink::train {

using nlohmann::json;

json TrainingHistory::to_json() const {
  json out = json::array();
  for (const auto& e : epochs) {
    out.push_back({{"epoch", e.epoch},
                   {"train_loss", e.train_loss},
                   {"train_accuracy", e.train_accuracy},
                   {"val_loss", e.val_loss},
                   {"val_accuracy", e.val_accuracy},
                   {"lr", e.lr},
                   {"seconds", e.seconds},
                   {"samples_per_s", e.samples_per_s}});
  }
  return {{"epochs", out}, {"resumed", resumed}, {"steps", steps}};
}

TrainingHistory TrainingHistory::from_json(const json& j) {
  TrainingHistory h;
  for (const auto& e : j.at("epochs")) {
    h.epochs.push_back({e.at("epoch").get<int64_t>(), e.at("train_loss").get<double>(),
                        e.at("train_accuracy").get<double>(), e.at("val_loss").get<double>(),
                        e.at("val_accuracy").get<double>(), e.at("lr").get<double>(), e.at("seconds").get<double>(),
                        e.at("samples_per_s").get<double>()});
  }
  h.resumed = j.at("resumed").get<bool>();
  h.steps = j.at("steps").get<int64_t>();
  return h;
}

TrainingHistory history_of(const FitResult& r) {
  TrainingHistory h;
  for (const auto& e : r.epochs) {
    h.epochs.push_back(
        {e.epoch + 1, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy, e.lr, e.seconds, e.samples_per_s});
  }
  h.resumed = r.resumed;
  h.steps = r.global_step;
  return h;
}

std::vector<EpochSummary> summaries_of(const TrainingHistory& history) {
  std::vector<EpochSummary> out;
  for (const auto& e : history.epochs) {
    out.push_back(
        {e.epoch - 1, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy, e.lr, e.seconds, e.samples_per_s});
  }
  return out;
}

}  // namespace shrink::train
