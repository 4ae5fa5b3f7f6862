// L1 unstructured pruner for any torch::nn::Module: selection by regex, layer or global scope,
// masks as `<param>_mask` buffers, and one-shot / iterative / AGP schedules driven by train steps.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "compress/prune/channel_graph.h"
#include "compress/prune/prune_summary.h"
#include "config/options_spec.h"
#include "core/enum_names.h"
#include "io/state_dict.h"
#include "models/model.h"
#include "train/modifier_kind.h"
#include "train/trainer.h"

namespace shrink::compress::prune {

enum class PruneScheduleKind { kOneShot, kIterative, kAgp };
inline const core::EnumNames<PruneScheduleKind>& enum_names(PruneScheduleKind) {
  static const core::EnumNames<PruneScheduleKind> names{{PruneScheduleKind::kOneShot, "oneshot"},
                                                        {PruneScheduleKind::kIterative, "iterative"},
                                                        {PruneScheduleKind::kAgp, "agp"}};
  return names;
}

// How weights are ranked: by magnitude. Channels are ranked by the L1 or L2 norm of their filter
// (or Linear row); single weights rank the same under both.
enum class PruneMethod { kL1, kL2 };
inline const core::EnumNames<PruneMethod>& enum_names(PruneMethod) {
  static const core::EnumNames<PruneMethod> names{{PruneMethod::kL1, "l1"}, {PruneMethod::kL2, "l2"}};
  return names;
}

// weights: single entries become zero (CSR kernels speed them up). channels: whole output channels
// of Conv2d and Linear layers are masked while the run trains and removed when it ends, leaving
// smaller dense layers (compress/prune/channel_graph.h says which layers can be). n:m: in every
// group of m consecutive weights along a layer's inputs, sparsity × m are zero (2:4 = m 4,
// sparsity 0.5), the pattern sparse tensor cores run.
enum class PruneStructure { kWeights, kChannels, kNM };
inline const core::EnumNames<PruneStructure>& enum_names(PruneStructure) {
  static const core::EnumNames<PruneStructure> names{
      {PruneStructure::kWeights, "weights"}, {PruneStructure::kChannels, "channels"}, {PruneStructure::kNM, "n:m"}};
  return names;
}

// layer: each tensor to its target; global: one threshold across the selected tensors.
enum class PruneScope { kLayer, kGlobal };
inline const core::EnumNames<PruneScope>& enum_names(PruneScope) {
  static const core::EnumNames<PruneScope> names{{PruneScope::kLayer, "layer"}, {PruneScope::kGlobal, "global"}};
  return names;
}

struct PruneScheduleOptions {
  // oneshot: prune to the target at start_epoch, then fine-tune.
  // iterative: `rounds` prunes, evenly spaced over [start_epoch, end_epoch); each removes the same
  //   fraction of what is left (round r of k reaches 1 - (1 - s)^(r/k)).
  // agp: Zhu & Gupta (2017), s_t = s_f + (s_i - s_f)(1 - (t - t0)/(nΔt))³, masks updated every
  //   `frequency` steps from start_epoch to end_epoch.
  TORCH_ARG(PruneScheduleKind, kind) = PruneScheduleKind::kOneShot;
  TORCH_ARG(double, start_epoch) = 0.0;
  TORCH_ARG(double, end_epoch) = 0.0;
  TORCH_ARG(int64_t, rounds) = 3;
  TORCH_ARG(double, initial_sparsity) = 0.0;
  TORCH_ARG(int64_t, frequency) = 100;
};

using SparsityOverrides = std::vector<std::pair<std::string, double>>;  // regex → sparsity

// The forward time in milliseconds of the model with `removals` applied (channel counts matter,
// not which channels): a latency target's search asks it at each ratio it tries.
using LatencyProbe = std::function<double(const std::vector<ChannelRemoval>& removals)>;

// Builds a fresh copy of the model with `fresh_copy`, removes the channels, plans it for the batch
// (models/inference_plan.h: the path reports time) and times `repeats` forwards of a zero batch of
// `input_shape` ({batch, sample...}) after two warm-ups on the copy's device (synchronised on
// CUDA): the median, in milliseconds.
LatencyProbe timed_latency_probe(std::function<models::Model()> fresh_copy, std::vector<int64_t> input_shape,
                                 int repeats = 15);

struct PruneOptions {
  TORCH_ARG(PruneMethod, method) = PruneMethod::kL1;
  TORCH_ARG(PruneStructure, structure) = PruneStructure::kWeights;
  // Target fraction of selected entries set to zero (channels: of each layer's output channels;
  // one channel a layer is always kept; n:m: of each group, so sparsity × m must be whole).
  TORCH_ARG(double, sparsity) = 0.5;
  // n:m: the group size m.
  TORCH_ARG(int64_t, m) = 4;
  // layer: each tensor to its target; global: one threshold (channels: over norms divided by
  // their layer's mean, so wide and narrow layers compare).
  TORCH_ARG(PruneScope, scope) = PruneScope::kLayer;
  // Channels: whether the channels residual adds join are pruned (together, in every layer that
  // writes or reads them) or left whole (channel_graph.h).
  TORCH_ARG(ResidualChannels, residual) = ResidualChannels::kWhole;
  // Channels, layer scope: the pruned model's FLOPs as a fraction of the dense model's (0 = no
  // such target). One channel ratio for every layer without an override, the smallest that
  // reaches it, found from the dense model's costs (models/cost.h); `sparsity` caps it.
  TORCH_ARG(double, flops) = 0.0;
  // The same for the weights of those layers (Conv2d and Linear weight entries): the pruned
  // model's as a fraction of the dense model's.
  TORCH_ARG(double, params) = 0.0;
  // The same for the pruned model's forward time in milliseconds at `latency_batch` samples, as a
  // LatencyProbe measures it at each channel ratio the search tries. At most one of flops, params
  // and latency_ms.
  TORCH_ARG(double, latency_ms) = 0.0;
  TORCH_ARG(int64_t, latency_batch) = 1;
  // Regexes searched in parameter names. No include = every weight of rank >= 2 but an Embedding's
  // table (Linear and Conv weights), so biases, normalisation and lookups are left alone.
  TORCH_ARG(std::vector<std::string>, include) = {};
  TORCH_ARG(std::vector<std::string>, exclude) = {};
  // Per-tensor targets: the first matching regex wins. Under global scope these tensors are
  // pruned layer-wise to their own target and kept out of the global pool. Channels: a group's
  // producer's weight is matched; a residual group takes the first of its producers that matches.
  TORCH_ARG(SparsityOverrides, overrides) = {};
  TORCH_ARG(PruneScheduleOptions, schedule) = {};
};

// The recipe keys of PruneOptions and its schedule: a prune modifier's and a prune stage's.
const config::OptionsSpec<PruneScheduleOptions>& prune_schedule_spec();
const config::OptionsSpec<PruneOptions>& prune_spec();
void validate(const PruneOptions& options);

// The transform kind (models/restore.h) that gives a rebuilt model its `<param>_mask` buffers.
inline constexpr const char* kMaskTransform = "prune_masks";

// Names of the parameters `options` selects in `module`; throws a UsageError listing the module's
// parameter names when a selector matches nothing.
std::vector<std::string> select_parameters(const torch::nn::Module& module, const PruneOptions& options);

// Channels: the groups whose producer's weight the options select, and the selected layers that
// cannot be pruned by channel with the reason; a layer `include` names explicitly that cannot be is
// a UsageError with the reason, as is a selection with no prunable layer.
struct ChannelSelection {
  std::vector<ChannelGroup> groups;
  std::vector<SkippedLayer> skipped;
};
ChannelSelection select_channels(const torch::nn::Module& module, const PruneOptions& options);
// What ranks a group's channels: the L1 or L2 norm of each of the producer's filters (Linear rows).
at::Tensor channel_norms(const at::Tensor& weight, PruneMethod method);
// The same for a group of several producers (residual channels): each producer's norms divided by
// their mean over the `alive` channels (all when undefined), so a 1×1 shortcut and a 3×3 conv
// weigh alike, then averaged; one producer's are its norms.
at::Tensor channel_scores(const std::vector<at::Tensor>& weights, PruneMethod method, const at::Tensor& alive = {});
// Keeps (1) or prunes (0) each channel: `k` of the lowest scores pruned, channels already pruned
// (score < 0) first; never the last one.
at::Tensor channel_keep(const at::Tensor& scores, int64_t k);
// The tensors a pruned channel is masked in: the producers' and followers' weights and biases, the
// first producer's weight first.
std::vector<std::string> channel_tensors(const ChannelGroup& group, const torch::nn::Module& module);

// Registers an all-ones `<param>_mask` buffer for every `*_mask` name in `names` the module lacks,
// so a state_dict saved from a pruned model loads into a fresh one.
void ensure_mask_buffers(torch::nn::Module& module, const std::vector<std::string>& names);

// A modifier: attach it to a Trainer (add_modifier), or drive it from your own loop with step().
// Recipes name it `prune` (train/modifier_kind.h).
class L1Pruner : public train::Modifier {
 public:
  using Options = PruneOptions;
  static const config::OptionsSpec<PruneOptions>& spec() { return prune_spec(); }
  static std::shared_ptr<L1Pruner> attach(const PruneOptions& options, train::ModifierContext& ctx);
  // The schedule's epochs must fall inside the run's.
  static void check_epochs(const PruneOptions& options, int64_t epochs, const std::string& run);
  // Every selector must match a parameter of the model.
  // Channels: also that at least one selected layer's channels can be removed, and that every
  // layer `include` names explicitly can (else the reason).
  static void check(const PruneOptions& options, torch::nn::Module& model);
  // The tensors it masks; with channels also those it resizes (followers', consumers').
  static std::vector<std::string> claims(const PruneOptions& options, const torch::nn::Module& model);
  // Channels are removed as the run ends: later modifiers of the run must not hold the old layers.
  static bool reshapes_model(const PruneOptions& options) { return options.structure() == PruneStructure::kChannels; }

  // Selects the tensors and attaches their mask buffers (all ones unless already present).
  L1Pruner(std::shared_ptr<torch::nn::Module> module, PruneOptions options);
  // The same, for a FLOPs or parameter target: the model runs one zero sample of `sample_shape`
  // to count them. A latency target asks `probe` instead (timed_latency_probe times real copies),
  // when training begins or at the first prune (choose_latency_ratio).
  L1Pruner(const models::Model& model, const std::vector<int64_t>& sample_shape, PruneOptions options,
           LatencyProbe probe = {});

  // A latency target's search: the dense model, the cap, then six halvings of the ratio. Runs once,
  // at on_train_begin or the first prune, whichever comes first, so that a resumed run's checkpoint
  // (load) can restore the ratio before and no search runs; nothing without a latency target.
  void choose_latency_ratio();
  // Prunes every selected tensor to `fraction` × its target now (1 = the full target).
  void prune_to_fraction_of_target(double fraction);
  // Re-imposes the masks on the weights (w *= mask).
  void apply_masks();
  // Target sparsity of the schedule at `step` of a run with `steps_per_epoch`, as a fraction of
  // the final target in [0, 1]; negative when masks are not due for an update at that step.
  double schedule_fraction(int64_t step, int64_t steps_per_epoch) const;
  // For your own loop: call before each optimizer step; updates masks when the schedule says so.
  void step(int64_t global_step, int64_t steps_per_epoch);
  // Folds the masks into the weights one last time and stops enforcing them: the pruner is inert
  // afterwards. (torch.nn.utils.prune.remove also deletes the mask; LibTorch 1.13 cannot unregister
  // a buffer, so `*_mask` stays in the state_dict, still describing the pattern; compressed files
  // store it as a reference to its weight at no cost.)
  void finalize();
  // Channels: removes the pruned channels (finalizing first); nothing for single weights.
  void remove_pruned_channels();

  // Channels: the layers whose channels are pruned and those skipped, with the reason (n:m: the
  // tensors whose inputs do not group by m).
  const std::vector<ChannelGroup>& channel_groups() const { return groups_; }
  const std::vector<SkippedLayer>& skipped_layers() const { return skipped_; }
  // Channels with a FLOPs or parameter target: the channel ratio chosen for the layers without an
  // override.
  double cost_sparsity() const { return cost_sparsity_; }
  // A latency target: the probe's milliseconds for the dense model and at the chosen ratio (once
  // chosen: see choose_latency_ratio).
  double dense_latency_ms() const { return dense_latency_ms_; }
  double target_latency_ms() const { return target_latency_ms_; }
  // Channels: which each group keeps (its producer's nonzero rows, or what was removed).
  std::vector<ChannelRemoval> kept_channels() const;

  const std::vector<std::string>& selected() const { return names_; }
  std::vector<LayerSparsity> layers() const;
  // Sparsity over all selected tensors together.
  double sparsity() const;

  const PruneOptions& options() const { return options_; }

  // Modifier
  std::string name() const override { return "prune"; }
  // The schedule's span: [start_epoch, end_epoch), or the one epoch of a one-shot prune.
  train::Window window() const override;
  std::string fingerprint() const override;
  // A latency target's chosen ratio and the times it was chosen on: timings differ between runs,
  // so a resumed run keeps the interrupted run's choice and does not search again.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  std::vector<models::Transform> transforms() const override;
  // Channels: removes the pruned channels (remove_pruned_channels).
  void finish(models::Model& model) override;
  // Method, scope, target, schedule, window, reached sparsity and per-layer figures.
  std::shared_ptr<const train::ModifierSummary> summary() const override;
  void on_train_begin(train::Trainer& trainer) override;
  void on_step_begin(train::Trainer& trainer, const train::StepInfo& step) override;
  void on_step_end(train::Trainer& trainer, const train::StepInfo& step) override;

 private:
  struct Target {
    std::string name;
    at::Tensor weight;  // the parameter (shares storage)
    at::Tensor mask;    // the buffer (shares storage)
    double sparsity;
    bool in_global_pool;
  };

  // A channel group's masked tensors: the producers' weights and biases, its followers'.
  struct ChannelTarget {
    std::vector<at::Tensor> weights;                        // the producers' (rank the channels)
    std::vector<std::pair<at::Tensor, at::Tensor>> masked;  // (tensor, mask) sharing storage
    double sparsity;
    bool in_global_pool;
    bool overridden;
  };

  double scheduled(double final_sparsity, double fraction) const;
  void prune_channels_to(double fraction);
  void search_latency(const LatencyProbe& probe);
  // A cost target's ratio for every channel group without an override.
  void use_cost_ratio(double ratio);
  std::vector<LayerSparsity> channel_layers() const;

  std::shared_ptr<torch::nn::Module> module_;
  PruneOptions options_;
  std::vector<std::string> names_;  // masked tensors
  std::vector<Target> targets_;
  std::vector<ChannelGroup> groups_;
  std::vector<SkippedLayer> skipped_;
  std::vector<ChannelTarget> channel_targets_;
  std::vector<ChannelRemoval> removed_;           // once removed
  std::vector<LayerSparsity> layers_at_removal_;  // the report's figures, read before the layers went
  double cost_sparsity_ = 0.0;
  double dense_latency_ms_ = 0.0, target_latency_ms_ = 0.0;
  LatencyProbe probe_;  // set until the latency search ran or a checkpoint restored its outcome
  bool finalized_ = false;
};

}  // namespace shrink::compress::prune
