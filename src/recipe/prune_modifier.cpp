// Prune modifier: recipe body → PruneOptions → an L1Pruner attached to the stage's model.
#include "recipe/prune_modifier.h"

#include "core/error.h"
#include "recipe/option_specs.h"

namespace shrink::recipe {

using core::cat;
namespace prune = compress::prune;

namespace {

class PrunePlan : public ModifierPlan {
 public:
  explicit PrunePlan(prune::PruneOptions options) : options_(std::move(options)) { prune::validate(options_); }

  void check_epochs(int64_t epochs, const std::string& run) const override {
    const auto& s = options_.schedule();
    if (s.kind() != "oneshot" && s.end_epoch() > static_cast<double>(epochs)) {
      throw core::UsageError(cat("schedule.end_epoch (", s.end_epoch(), ") is past the ", run));
    }
    if (s.start_epoch() > 0 && s.start_epoch() >= static_cast<double>(epochs)) {
      throw core::UsageError(cat("schedule.start_epoch (", s.start_epoch(), ") must fall inside the ", run));
    }
  }

  void check(torch::nn::Module& model) const override { prune::select_parameters(model, options_); }

  std::vector<std::string> claims(const torch::nn::Module& model) const override {
    return prune::select_parameters(model, options_);
  }

  std::shared_ptr<train::Modifier> attach(ModelSlot& slot, StageContext&) const override {
    return std::make_shared<prune::L1Pruner>(slot.model.module, options_);
  }

 private:
  prune::PruneOptions options_;
};

}  // namespace

std::vector<Field> prune_modifier_fields() {
  auto fields = prune_spec().schema()->fields;
  fields.insert(fields.begin(), with_default("method", one_of({"l1"}), "l1"));
  return fields;
}

std::unique_ptr<ModifierPlan> parse_prune_modifier(const YAML::Node& body) {
  return std::make_unique<PrunePlan>(prune_spec().parse(body));
}

ModifierKind prune_modifier_kind() {
  return {"prune", map_of(prune_modifier_fields()), parse_prune_modifier};
}

}  // namespace shrink::recipe
