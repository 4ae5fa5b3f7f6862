// The training loop: seeded batches, LR schedule, clipping, callbacks, NaN checks and checkpoints,
// with no host sync per step (losses are read back in blocks).
#include "train/trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/format.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/sha256.h"
#include "core/stopwatch.h"
#include "data/loader.h"
#include "dist/gradient_reducer.h"
#include "dist/replicas.h"
#include "train/checkpoint.h"
#include "train/precision.h"

namespace shrink::train {

using core::cat;

const config::OptionsSpec<TrainerOptions>& training_spec() {
  using O = TrainerOptions;
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, epochs, config::integer(0)), SHRINK_OPTION(O, batch_size, config::integer(1)),
       SHRINK_NESTED(O, optimizer, optimizer_spec()), SHRINK_NESTED(O, schedule, lr_schedule_spec()),
       SHRINK_OPTION(O, label_smoothing, config::number(0, 0.99)),
       SHRINK_OPTION(O, grad_clip, config::number(0), "max global gradient L2 norm; 0 = off"),
       SHRINK_OPTION(O, precision, config::one_of<Precision>(),
                     "autocast dtype of the forward pass and loss; fp16 (CUDA only) adds loss scaling; bf16 on "
                     "the CPU needs AVX-512: 1.6x fp32 measured with AMX, 0.9x without, 0.4x without AVX-512 BF16 "
                     "(docs/speed.md)"),
       SHRINK_NESTED(O, augment, data::augment_spec()),
       SHRINK_OPTION(O, length_buckets, config::integer(0, 100000),
                     "token ids: order each window of this many batches by length (less padding); 0 = off")});
  return spec;
}

void validate(const TrainerOptions& o) {
  training_spec().check(o, "training");
  validate(o.optimizer());
  if (o.eval_batch_size() <= 0) throw core::UsageError(cat("eval_batch_size must be > 0, got ", o.eval_batch_size()));
  if (o.resume() && o.checkpoint_path().empty()) throw core::UsageError("resume needs a checkpoint_path");
}

Trainer::Trainer(std::shared_ptr<torch::nn::Module> module, ForwardFn forward, TrainerOptions options)
    : module_(std::move(module)), forward_(std::move(forward)), options_(std::move(options)) {
  SHRINK_CHECK(module_, "Trainer needs a module");
  SHRINK_CHECK(forward_, "Trainer needs a forward function");
  validate(options_);
}

Trainer::~Trainer() = default;

void Trainer::add_callback(std::shared_ptr<TrainerCallback> callback) {
  SHRINK_CHECK(callback, "add_callback: null callback");
  callbacks_.push_back(std::move(callback));
}

void Trainer::add_modifier(std::shared_ptr<Modifier> modifier) {
  SHRINK_CHECK(modifier, "add_modifier: null modifier");
  SHRINK_CHECK(!optimizer_, "add_modifier(", modifier->name(), "): modifiers must be added before the first fit()");
  modifiers_.push_back(modifier);
  callbacks_.push_back(std::move(modifier));
}

void Trainer::set_loss(LossFn loss) { loss_ = std::move(loss); }

void Trainer::prepare() {
  if (optimizer_) return;
  for (auto& m : modifiers_) m->prepare(*module_);
  auto params = module_->parameters();
  for (auto& m : modifiers_) {
    for (auto& p : m->extra_parameters()) params.push_back(p);
  }
  optimizer_ = make_optimizer(params, options_.optimizer());
}

torch::optim::Optimizer& Trainer::optimizer() {
  prepare();
  return *optimizer_;
}

std::string Trainer::fingerprint(const data::Dataset& train) const {
  // Every recipe key of the run (from its one description), the seed, the data size and the shapes.
  std::string s = cat(training_spec().text(options_), ";seed=", options_.seed(), ";n=", train.size());
  for (const auto& p : module_->named_parameters()) s += cat(";", p.key(), p.value().sizes());
  for (const auto& m : modifiers_) s += cat(";modifier=", m->name(), "{", m->fingerprint(), "}");
  return core::sha256_hex(s);
}

namespace {

// Step losses stay on the device and are read back (one host sync) every this many steps and at
// each epoch's end: a non-finite loss is still named by its step, at most this many steps late.
constexpr int64_t kLossReadInterval = 64;

// torch::nn::utils::clip_grad_norm_ returns the norm as a double, a host sync every step; this is
// the same rule (scale by max_norm / (norm + 1e-6) when below 1) computed on the device.
void clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  std::vector<at::Tensor> norms;
  for (const auto& p : params) {
    if (p.grad().defined()) norms.push_back(p.grad().detach().norm(2));
  }
  if (norms.empty()) return;
  const auto scale = (max_norm / (torch::stack(norms).norm(2) + 1e-6)).clamp_max(1.0);
  for (const auto& p : params) {
    if (p.grad().defined()) p.grad().detach().mul_(scale);
  }
}

std::string format_rate(double samples_per_s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f samples/s", samples_per_s);
  return buf;
}

// acc < 0: the data has no labels to count correct answers by.
std::string format_metrics(double loss, double acc) {
  char buf[64];
  if (acc < 0) {
    std::snprintf(buf, sizeof buf, "loss %.4f", loss);
  } else {
    std::snprintf(buf, sizeof buf, "loss %.4f acc %.4f", loss, acc);
  }
  return buf;
}

}  // namespace

FitResult Trainer::fit(const data::Dataset& train, const data::Dataset& val) {
  const auto& o = options_;
  prepare();
  const auto& group = o.group();
  const bool parallel = group && group->world_size() > 1;
  const bool writes = !parallel || group->rank() == 0;
  data::BatchLoader loader(train, data::LoaderOptions()
                                      .batch_size(o.batch_size())
                                      .shuffle(true)
                                      .seed(o.seed())
                                      .augment(o.augment())
                                      .length_buckets(o.length_buckets())
                                      .shard(parallel ? group->rank() : 0)
                                      .shards(parallel ? group->world_size() : 1));
  const int64_t spe = loader.batches_per_epoch();
  const int64_t total = spe * o.epochs();
  const LrSchedule schedule(o.schedule(), o.optimizer().lr(), spe, o.epochs());
  const std::string print = fingerprint(train);
  std::vector<at::Tensor> params;
  for (const auto& group : optimizer_->param_groups()) {
    for (const auto& p : group.params()) params.push_back(p);
  }

  const c10::Device device = train.inputs.device();
  const Precision precision = o.precision();
  check_precision(device, precision);
  std::optional<LossScaler> scaler;
  if (precision == Precision::kFp16) scaler.emplace();

  FitResult result;
  int64_t start_epoch = 0;
  int64_t global_step = 0;
  if (o.resume() && std::filesystem::exists(o.checkpoint_path())) {
    const auto state = load_checkpoint(o.checkpoint_path(), *module_, *optimizer_, modifiers_, print);
    start_epoch = state.epochs_done;
    global_step = state.global_step;
    if (scaler && state.loss_scale > 0) scaler->restore(state.loss_scale, state.loss_scale_finite_steps);
    result.resumed = true;
    result.epochs = state.epochs;
    core::log_info(o.label(), ": resumed from ", o.checkpoint_path(), " after epoch ", start_epoch, "/", o.epochs());
  }

  // The replicas start from rank 0's weights (a resumed run's are alike already) and a step's
  // buffers (batch-norm statistics, observers) follow rank 0's, as DDP's broadcast_buffers does.
  std::optional<dist::GradientReducer> reducer;
  // The replicated state, listed afresh each time: a modifier may add buffers (masks) mid-run.
  const auto replicated = [&](dist::ReplicaState what) {
    auto tensors = dist::replica_tensors(*module_, what);
    for (const auto& m : modifiers_) {
      for (auto& [name, t] : m->state_tensors()) tensors.emplace_back(cat(m->name(), ":", name), t);
    }
    return tensors;
  };
  if (parallel) {
    dist::broadcast_from_rank0(*group, replicated({}), "before training");
    // The optimizer's tensors under the module's names (a modifier's own under the modifier's),
    // for messages that say which parameter.
    std::map<const void*, std::string> names;
    for (const auto& p : module_->named_parameters()) names[p.value().unsafeGetTensorImpl()] = p.key();
    dist::NamedTensors named;
    for (const auto& p : params) {
      const auto it = names.find(p.unsafeGetTensorImpl());
      named.emplace_back(it != names.end() ? it->second : cat("modifier parameter ", named.size()), p);
    }
    reducer.emplace(group, named);
  }

  for (auto& cb : callbacks_) cb->on_train_begin(*this);
  namespace F = torch::nn::functional;
  const auto ce_options = F::CrossEntropyFuncOptions().label_smoothing(o.label_smoothing());

  for (int64_t epoch = start_epoch; epoch < o.epochs(); ++epoch) {
    module_->train();
    loader.start_epoch(epoch);
    core::ProgressBar bar(cat(o.label(), " epoch ", epoch + 1, "/", o.epochs()), spe, o.progress());
    core::Stopwatch watch;
    double loss_sum = 0.0;  // of the steps read back so far
    CorrectCounter correct;
    int64_t seen = 0, read_seen = 0;
    double lr = 0.0;
    struct PendingLoss {
      at::Tensor loss;
      int64_t step, global_step, samples;
      double lr;
    };
    std::vector<PendingLoss> pending;
    const auto read_losses = [&] {
      if (pending.empty()) return;
      std::vector<at::Tensor> values;
      for (const auto& p : pending) values.push_back(p.loss);
      const auto host = torch::stack(values).to(torch::kCPU, torch::kDouble);
      const auto* v = host.data_ptr<double>();
      for (size_t k = 0; k < pending.size(); ++k) {
        const auto& p = pending[k];
        if (!std::isfinite(v[k])) {
          throw core::Error(cat(o.label(), ": loss is ", v[k], " at epoch ", epoch + 1, ", step ", p.step + 1,
                                " (global step ", p.global_step + 1, ", lr ", p.lr,
                                "); lower the learning rate or set grad_clip"));
        }
        loss_sum += v[k] * static_cast<double>(p.samples);
        read_seen += p.samples;
      }
      pending.clear();
    };
    for (int64_t i = 0; i < spe; ++i) {
      lr = schedule.at(global_step);
      const StepInfo info{epoch, i, global_step, spe, total, lr};
      set_learning_rate(*optimizer_, lr);
      for (auto& cb : callbacks_) cb->on_step_begin(*this, info);

      const auto batch = loader.batch(i);
      for (auto& p : params) p.mutable_grad().reset();
      const int64_t n = batch.inputs.size(0);
      if (reducer) reducer->start_step(static_cast<double>(n) / static_cast<double>(loader.batch_samples(i)));
      // A rank whose part of a short final batch is empty still joins the step's all-reduce.
      at::Tensor logits, loss;
      if (n > 0) {
        {
          const AutocastScope autocast(device, precision);
          logits = forward_(batch.inputs);
          // Without labels the incoming loss is 0: a modifier (distillation at alpha 1) gives the loss.
          loss = !batch.targets.defined() ? at::zeros({}, logits.options())
                 : loss_                  ? loss_(logits, batch.inputs, batch.targets)
                                          : F::cross_entropy(logits, batch.targets, ce_options);
          const LossInputs inputs{logits, batch.inputs, batch.targets, batch.augmented ? at::Tensor() : batch.indices,
                                  batch.augmented ? at::Tensor() : batch.host_indices};
          for (auto& m : modifiers_) loss = m->adjust_loss(loss, inputs, info);
        }
        if (!loss.requires_grad()) {
          throw core::UsageError(cat(o.label(), ": the training data has no labels and nothing gave step ", i + 1,
                                     " of epoch ", epoch + 1,
                                     " a loss: train it by distillation (alpha 1) over every epoch"));
        }
        (scaler ? scaler->scale(loss) : loss).backward();
      }
      if (reducer) reducer->finish_step();
      const bool finite = !scaler || scaler->unscale(params);
      for (auto& cb : callbacks_) cb->on_after_backward(*this, info);
      if (o.grad_clip() > 0) clip_grad_norm(params, o.grad_clip());
      if (finite) optimizer_->step();  // fp16 overflowed: skip the step, as GradScaler does
      if (scaler) scaler->update(finite);
      if (parallel) {
        if (const auto buffers = replicated({false, false}); !buffers.empty())
          dist::broadcast_from_rank0(*group, buffers, "after a step");
      }
      for (auto& cb : callbacks_) cb->on_step_end(*this, info);

      if (n > 0) {
        pending.push_back({loss.detach(), i, global_step, n, lr});
        if (batch.targets.defined()) correct.add(logits, batch.targets);
      }
      seen += n;
      ++global_step;
      if (static_cast<int64_t>(pending.size()) >= kLossReadInterval) read_losses();
      bar.update(i + 1, [&] {
        return cat(format_metrics(read_seen ? loss_sum / read_seen : 0.0,
                                  train.labelled() ? static_cast<double>(correct.total()) / seen : -1.0),
                   "  ", format_rate(seen / watch.seconds()));
      });
    }
    read_losses();
    int64_t correct_total = correct.total();
    if (parallel) {
      // The epoch's figures are the group's: every rank's samples, losses and right answers.
      auto totals = torch::tensor(
          {loss_sum, static_cast<double>(read_seen), static_cast<double>(correct_total), static_cast<double>(seen)},
          torch::kDouble);
      group->sum(totals, cat("epoch ", epoch + 1, " figures"));
      const auto* t = totals.data_ptr<double>();
      loss_sum = t[0];
      read_seen = static_cast<int64_t>(t[1]);
      correct_total = static_cast<int64_t>(t[2]);
      seen = static_cast<int64_t>(t[3]);
      // Masks and weights the same on every rank, or the run stops saying where they parted.
      dist::check_replicas(*group, replicated({}), cat("in epoch ", epoch + 1));
    }

    EpochSummary summary;
    summary.epoch = epoch;
    summary.seconds = watch.seconds();
    summary.samples_per_s = static_cast<double>(seen) / std::max(summary.seconds, 1e-9);
    summary.train_loss = loss_sum / static_cast<double>(seen);
    summary.train_accuracy = static_cast<double>(correct_total) / static_cast<double>(seen);
    summary.lr = lr;
    std::string status = format_metrics(summary.train_loss, train.labelled() ? summary.train_accuracy : -1.0);
    if (val.size() > 0 && val.labelled()) {
      const auto v = evaluate(*module_, forward_, val, o.eval_batch_size());
      summary.val_loss = v.loss;
      summary.val_accuracy = v.accuracy;
      char buf[64];
      std::snprintf(buf, sizeof buf, "  val_loss %.4f val_acc %.4f", v.loss, v.accuracy);
      status += buf;
    }
    status += "  " + format_rate(summary.samples_per_s);
    bar.finish(status);
    for (auto& cb : callbacks_) cb->on_epoch_end(*this, summary);
    result.epochs.push_back(summary);
    if (!o.checkpoint_path().empty() && writes) {
      CheckpointState state;
      state.epochs_done = epoch + 1;
      state.global_step = global_step;
      state.fingerprint = print;
      if (scaler) {
        state.loss_scale = scaler->current_scale();
        state.loss_scale_finite_steps = scaler->finite_steps();
      }
      state.epochs = result.epochs;
      save_checkpoint(o.checkpoint_path(), *module_, *optimizer_, modifiers_, state);
    }
  }
  if (reducer && reducer->stats().steps > 0) {
    const auto& r = reducer->stats();
    core::log_info(o.label(), ": all-reduce over ", group->world_size(), " ranks: ", r.buckets, " bucket",
                   r.buckets == 1 ? "" : "s", " (", core::format_double("%.2f", r.bytes / 1048576.0), " MB) a step, ",
                   r.sent_during_backward, " of ", r.buckets * r.steps, " sent during backward; ",
                   core::format_double("%.3f", 1000.0 * r.waited_s / r.steps), " ms a step waited after backward");
  }
  for (auto& cb : callbacks_) cb->on_train_end(*this);
  module_->eval();
  result.epochs_done = o.epochs();
  result.global_step = global_step;
  return result;
}

}  // namespace shrink::train
