// Knowledge-distillation losses for any training loop: Hinton et al.'s soft-target loss mixed with
// the hard-label loss, and feature (hint) distillation between intermediate outputs with a
// learnable adapter when widths differ. The teacher's tensors never receive gradients.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>

#include "config/options_spec.h"
#include "core/enum_names.h"

namespace shrink::distill {

// mse, or cosine: 1 − cosine similarity, per sample.
enum class FeatureDistance { kMse, kCosine };
inline const core::EnumNames<FeatureDistance>& enum_names(FeatureDistance) {
  static const core::EnumNames<FeatureDistance> names{{FeatureDistance::kMse, "mse"},
                                                      {FeatureDistance::kCosine, "cosine"}};
  return names;
}

// What the student's outputs learn from the teacher's: the softened class distribution (Hinton et
// al.), or for a model whose outputs are embeddings (a sentence encoder), the vectors themselves.
enum class DistillObjective { kLogits, kCosine, kMse };
inline const core::EnumNames<DistillObjective>& enum_names(DistillObjective) {
  static const core::EnumNames<DistillObjective> names{
      {DistillObjective::kLogits, "logits"}, {DistillObjective::kCosine, "cosine"}, {DistillObjective::kMse, "mse"}};
  return names;
}

// The distance the objective takes between student and teacher outputs [N, D], averaged over the
// batch: logits: soft_target_loss at `temperature`; cosine: 1 − cosine similarity of each row;
// mse: the mean squared difference.
at::Tensor output_distance(const at::Tensor& student, const at::Tensor& teacher, DistillObjective objective,
                           double temperature);

struct KdLossOptions {
  TORCH_ARG(double, temperature) = 4.0;  // T: softens both distributions
  TORCH_ARG(double, alpha) = 0.5;        // weight of the soft-target term; 1 − alpha on the labels
  TORCH_ARG(DistillObjective, objective) = DistillObjective::kLogits;
};

// The keys of KdLossOptions (a distill modifier's `temperature` and `alpha`).
const config::OptionsSpec<KdLossOptions>& kd_loss_spec();
void validate(const KdLossOptions& options);

// T² · KL(softmax(teacher / T) ‖ softmax(student / T)), averaged over the batch: PyTorch's
// `F.kl_div(log_softmax(s / T), softmax(t / T), reduction='batchmean') * T²`.
at::Tensor soft_target_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits, double temperature);

// alpha · output_distance (soft_target_loss for logits) + (1 − alpha) · cross_entropy(student_logits, targets).
at::Tensor kd_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits, const at::Tensor& targets,
                   const KdLossOptions& options);

struct FeatureLossOptions {
  TORCH_ARG(FeatureDistance, distance) = FeatureDistance::kMse;
  TORCH_ARG(int64_t, student_channels) = 0;  // widths along dim 1 (the last for tokens); an adapter maps
  TORCH_ARG(int64_t, teacher_channels) = 0;  // student → teacher when they differ (1×1 conv for [N, C, H, W],
                                             // Linear for [N, C] and [N, L, C])
  TORCH_ARG(bool, spatial) = false;          // true: the features are [N, C, H, W]
  // true: the features are token states [N, L, C] (a transformer layer's output); the widths are
  // along the last dimension, and the adapter is a Linear applied to each token.
  TORCH_ARG(bool, tokens) = false;
};

// Hint loss between a student's and a teacher's intermediate output. The adapter (when there is
// one) is a registered submodule: give `parameters()` to the optimizer; it is not part of the student.
class FeatureLossImpl : public torch::nn::Module {
 public:
  explicit FeatureLossImpl(FeatureLossOptions options);
  // `token_mask` [N, L] (token features only): true where a token is, false at padding, which then
  // counts for nothing — MSE is averaged over the tokens' states, cosine taken over them alone.
  at::Tensor forward(const at::Tensor& student_features, const at::Tensor& teacher_features,
                     const at::Tensor& token_mask = {});
  bool has_adapter() const { return linear_ || conv_; }
  const FeatureLossOptions& options() const { return options_; }

 private:
  FeatureLossOptions options_;
  torch::nn::Linear linear_{nullptr};
  torch::nn::Conv2d conv_{nullptr};
};

TORCH_MODULE(FeatureLoss);

}  // namespace shrink::distill
