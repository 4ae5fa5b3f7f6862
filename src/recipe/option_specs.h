// The recipe keys of the library's options structs: one OptionsSpec per struct, the only place a
// key, its range and its binding are written (defaults are the structs' own).
#pragma once

#include "compress/prune/l1_pruner.h"
#include "data/synthetic.h"
#include "config/options_spec.h"
#include "report/measure.h"
#include "train/trainer.h"

namespace shrink::recipe {

// Recipes are written in config's schema vocabulary.
using namespace config;

const OptionsSpec<train::OptimizerOptions>& optimizer_spec();
const OptionsSpec<train::LrScheduleOptions>& lr_schedule_spec();
// epochs, batch_size, optimizer, schedule, label_smoothing, grad_clip.
const OptionsSpec<data::AugmentOptions>& augment_spec();
const OptionsSpec<train::TrainerOptions>& training_spec();
const OptionsSpec<compress::prune::PruneScheduleOptions>& prune_schedule_spec();
// sparsity, scope, include, exclude, overrides, schedule.
const OptionsSpec<compress::prune::PruneOptions>& prune_spec();
const OptionsSpec<data::SyntheticOptions>& synthetic_spec();
const OptionsSpec<report::LatencyOptions>& latency_spec();

}  // namespace shrink::recipe
