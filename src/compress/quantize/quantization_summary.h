// What an int8 conversion did (PTQ, or QAT's at the end of training): the stage's "quantization"
// section — method, engine, observers, the layers made int8 and those kept float with the reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compress/quantize/observer.h"
#include "train/report_section.h"

namespace shrink::compress::quantize {

struct FloatLayer {
  std::string layer;
  std::string reason;
};

struct QuantizationSummary : train::ReportSection {
  std::string method;   // static | dynamic | qat
  std::string backend;  // onednn | qnnpack
  std::string kernels;  // LibTorch's engine running them (x86 or onednn for onednn's scheme); "" when unknown
  std::optional<ObserverOptions> weights, activations;  // what PTQ observed with (QAT's modifier lists its own)
  std::vector<std::string> int8_layers;                 // paths of int8 layers and residual adds
  std::vector<FloatLayer> float_layers;
  std::optional<int64_t> calibration_samples;  // static PTQ
  std::string device = "cpu";                  // where the int8 kernels run

  static constexpr const char* kKey = "quantization";
  std::string key() const override { return kKey; }
  nlohmann::json to_json() const override;
  static QuantizationSummary from_json(const nlohmann::json& j);
  std::string markdown(const train::StageView& stage) const override;
  std::string html(const train::StageView& stage) const override;
};

// Observer options as reports show them, and back (absent keys keep the defaults).
nlohmann::json observer_json(const ObserverOptions& options);
ObserverOptions observer_from_json(const nlohmann::json& j);

}  // namespace shrink::compress::quantize
