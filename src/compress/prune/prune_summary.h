// What a pruning modifier reports: method, structure, scope, schedule, target and reached sparsity,
// per layer (channels before and after when whole channels were pruned).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compress/prune/channel_graph.h"
#include "train/modifier.h"

namespace shrink::compress::prune {

struct LayerSparsity {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  int64_t nonzero = 0;
  double target = 0.0;
  double sparsity = 0.0;  // 1 - nonzero / numel; channels: 1 - kept_channels / channels
  // Channel pruning: the layer's output channels before and after (0: single weights pruned).
  int64_t channels = 0;
  int64_t kept_channels = 0;
};

struct PruneSummary : train::ModifierSummary {
  std::string method = "l1";
  std::string structure = "weights";
  std::string pattern;                // n:m: "2:4"
  std::vector<SkippedLayer> skipped;  // channels: layers left whole, with the reason (n:m: dense)
  double flops_target = 0;            // channels: the FLOPs fraction asked for (0: none)
  double flops_sparsity = 0;          // and the channel ratio chosen for it
  double params_target = 0;           // channels: the weights' fraction asked for (0: none)
  double params_sparsity = 0;         // and the channel ratio chosen for it
  double latency_target_ms = 0;       // channels: the forward time asked for (0: none)
  double latency_sparsity = 0;        // and the channel ratio chosen for it
  int64_t latency_batch = 1;          // the batch it was timed at
  double dense_latency_ms = 0;        // the probe's time of the dense model
  double pruned_latency_ms = 0;       // and at the chosen ratio
  std::string scope;
  std::string schedule;
  double target_sparsity = 0.0;  // asked for
  double sparsity = 0.0;         // reached, over the selected tensors together
  train::Window window;
  std::vector<LayerSparsity> layers;

  std::string key() const override { return "prune"; }
  nlohmann::json to_json() const override;
  static PruneSummary from_json(const nlohmann::json& j);
  std::string target() const override;
  std::string reached() const override;
  // Channels: each pruned layer's channels before → after, and the layers left whole with the reason.
  std::string markdown(const train::StageView& stage) const override;
  std::string html(const train::StageView& stage) const override;
};

}  // namespace shrink::compress::prune
