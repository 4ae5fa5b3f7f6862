// What a QAT modifier reports: engine, observers, freeze epochs, and once converted the int8 layers
// (which its stage also reports as its quantization).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compress/quantize/quantization_summary.h"
#include "train/modifier.h"

namespace shrink::compress::quantize {

struct QatSummary : train::ModifierSummary {
  std::string backend;
  ObserverOptions weights, activations;
  double freeze_observers_epoch = -1, freeze_bn_epoch = -1;
  bool learnable_scales = false;
  int64_t groups = 0;
  // Set once training ended in the conversion to int8.
  std::optional<std::vector<std::string>> int8_layers;
  std::vector<FloatLayer> float_layers;

  std::string key() const override { return "qat"; }
  nlohmann::json to_json() const override;
  static QatSummary from_json(const nlohmann::json& j);
  // The conversion, as the stage's quantization section.
  std::vector<std::shared_ptr<const train::ReportSection>> stage_sections() const override;
};

}  // namespace shrink::compress::quantize
