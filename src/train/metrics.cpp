// Evaluation loop and confusion-matrix based metrics.
#include "train/metrics.h"

#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "core/format.h"
#include "core/memory_budget.h"
#include "core/progress.h"
#include "data/loader.h"

namespace shrink::train {

uint64_t ConfusionMeter::bytes_for(int64_t num_classes) {
  SHRINK_CHECK(num_classes >= 1, "num_classes must be >= 1, got ", num_classes);
  return core::tensor_bytes({num_classes, num_classes}, sizeof(int64_t), "a confusion matrix");
}

ConfusionMeter::ConfusionMeter(int64_t num_classes) : classes_(num_classes) {
  core::check_fits_in_memory(bytes_for(num_classes),
                             core::cat("a confusion matrix of ", num_classes, " x ", num_classes, " classes"));
  confusion_ = torch::zeros({num_classes * num_classes}, torch::kLong);
}

// Counts stay on the logits' device: copying each batch's cells to the host, or CUDA's bincount
// (which reads its input's range), would sync every batch.
void ConfusionMeter::add(const at::Tensor& logits, const at::Tensor& targets) {
  if (confusion_.device() != logits.device()) confusion_ = confusion_.to(logits.device());
  const auto cell = targets * classes_ + logits.argmax(1);
  confusion_.scatter_add_(0, cell, torch::ones_like(cell));
}

EvalResult ConfusionMeter::result(double loss_sum) const {
  EvalResult r;
  r.confusion = confusion_.view({classes_, classes_}).to(torch::kCPU).clone();
  r.samples = r.confusion.sum().item<int64_t>();
  const auto correct = r.confusion.diagonal();
  r.accuracy = r.samples ? static_cast<double>(correct.sum().item<int64_t>()) / static_cast<double>(r.samples) : 0.0;
  r.loss = r.samples ? loss_sum / static_cast<double>(r.samples) : 0.0;
  const auto row_sum = r.confusion.sum(1);
  for (int64_t c = 0; c < classes_; ++c) {
    const int64_t n = row_sum[c].item<int64_t>();
    r.per_class_accuracy.push_back(n ? static_cast<double>(correct[c].item<int64_t>()) / static_cast<double>(n) : 0.0);
  }
  return r;
}

void CorrectCounter::add(const at::Tensor& logits, const at::Tensor& targets) {
  SHRINK_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0),
               "CorrectCounter needs logits [N, C] and targets [N], got ", logits.sizes(), " and ", targets.sizes());
  if (!logits.is_cpu() || !targets.is_cpu() || logits.scalar_type() != at::kFloat ||
      targets.scalar_type() != at::kLong || logits.size(1) == 0) {
    const auto n = logits.detach().argmax(1).eq(targets).sum();
    device_ = device_.defined() ? device_ + n : n;
    return;
  }
  const auto l = logits.detach().contiguous();
  const auto t = targets.contiguous();
  const int64_t rows = l.size(0), classes = l.size(1);
  const float* v = l.data_ptr<float>();
  const int64_t* target = t.data_ptr<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < rows; ++i, v += classes) {
    int64_t best = 0;
    for (int64_t j = 1; j < classes && !std::isnan(v[best]); ++j) {
      if (std::isnan(v[j]) || v[j] > v[best]) best = j;
    }
    correct += best == target[i];
  }
  host_ += correct;
}

int64_t CorrectCounter::total() const { return host_ + (device_.defined() ? device_.item<int64_t>() : 0); }

EvalResult evaluate(torch::nn::Module& module, const ForwardFn& forward, const data::Dataset& data, int64_t batch_size,
                    bool progress) {
  SHRINK_CHECK(data.size() > 0, "cannot evaluate on an empty dataset");
  if (!data.labelled()) {
    throw core::UsageError(
        "the data has no labels to score accuracy by: a recipe scores such data by embedding fidelity to a "
        "reference model (report.reference; docs/recipes.md, \"Text without labels\")");
  }
  const bool was_training = module.is_training();
  module.eval();
  torch::NoGradGuard no_grad;
  data::BatchLoader loader(data, data::LoaderOptions().batch_size(batch_size).shuffle(false));
  ConfusionMeter meter(data.num_classes());
  auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(data.inputs.device()));
  core::ProgressBar bar("eval", loader.batches_per_epoch(), progress);
  for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
    bar.update(i, [] { return std::string(); });
    const auto batch = loader.batch(i);
    const auto logits = forward(batch.inputs);
    SHRINK_CHECK(logits.dim() == 2 && logits.size(1) == data.num_classes(), "model output has shape ", logits.sizes(),
                 " but the dataset has ", data.num_classes(), " classes");
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, batch.targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .to(torch::kDouble);
    meter.add(logits, batch.targets);
  }
  module.train(was_training);
  auto result = meter.result(loss_sum.item<double>());
  bar.finish(core::cat(result.samples, " samples"));
  return result;
}

at::Tensor collect_outputs(torch::nn::Module& module, const ForwardFn& forward, const data::Dataset& data,
                           int64_t batch_size) {
  SHRINK_CHECK(data.size() > 0, "cannot run a model over an empty dataset");
  const bool was_training = module.is_training();
  module.eval();
  torch::NoGradGuard no_grad;
  data::BatchLoader loader(data, data::LoaderOptions().batch_size(batch_size).shuffle(false));
  std::vector<at::Tensor> parts;
  for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
    parts.push_back(forward(loader.batch(i).inputs).to(at::kCPU, at::kFloat));
  }
  module.train(was_training);
  return at::cat(parts);
}

}  // namespace shrink::train
