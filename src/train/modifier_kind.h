// Modifier kinds: the name a recipe gives a training-time compressor, the schema of its keys, and
// how its options become a modifier attached to a model. Each compressor registers its kind from
// its own file with one line,
//
//   SHRINK_REGISTER_MODIFIER(prune, L1Pruner)
//
// where the modifier class M declares
//   using Options = ...;                                     // its TORCH_ARG options
//   static const config::OptionsSpec<Options>& spec();       // its recipe keys, defaults, ranges
//   static std::shared_ptr<M> attach(const Options&, ModifierContext&);
// and, where it needs them, any of
//   static void check_epochs(const Options&, int64_t epochs, const std::string& run);
//   static void check(const Options&, torch::nn::Module& model);   // against a fresh model
//   static std::vector<std::string> claims(const Options&, const torch::nn::Module& model);
//   static std::vector<std::string> companions(const Options&);   // models run beside it
//   static constexpr bool kConvertsToInt8 = true;
// Options are validated with validate(const Options&) when the recipe is read.
#pragma once

#include <c10/core/Device.h>
#include <torch/nn/module.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "config/kind_registry.h"
#include "config/options_spec.h"
#include "core/registration.h"
#include "data/dataset.h"
#include "models/model.h"
#include "train/modifier.h"

namespace shrink::train {

// What attaching a modifier may reach beyond its options.
struct ModifierContext {
  models::Model model;                   // the model being trained
  const data::Dataset* train = nullptr;  // its training data
  c10::Device device = c10::kCPU;
  // Another model of the run by name (a teacher); throws a UsageError naming it when there is none.
  std::function<models::Model(const std::string& name)> model_named;
  // A fresh copy of the model being trained, weights and all (a latency target times copies).
  std::function<models::Model()> copy_model;
};

// A modifier as a recipe declares it: typed options, not yet attached to a model.
class ModifierPlan {
 public:
  virtual ~ModifierPlan() = default;
  // Throws a UsageError when the modifier cannot act within a run of `epochs` epochs; `run`
  // names that run for the message ("training run (epochs: 3)").
  virtual void check_epochs(int64_t epochs, const std::string& run) const {}
  // Checks the plan against a freshly built instance of the model (e.g. selectors match).
  virtual void check(torch::nn::Module& model) const {}
  // The tensors of `model` this modifier takes charge of; two modifiers of one run may not share
  // one (two pruners would fight over its mask).
  virtual std::vector<std::string> claims(const torch::nn::Module& model) const { return {}; }
  // The library modifier, attached to the context's model (it may change the model's structure).
  virtual std::shared_ptr<Modifier> attach(ModifierContext& ctx) const = 0;
  // True when the modifier converts the model to int8 as training ends (QAT).
  virtual bool converts_to_int8() const { return false; }
  // True when it replaces layers by smaller ones as training ends (channel pruning).
  virtual bool reshapes_model() const { return false; }
  // Models of the recipe the modifier runs beside the trained one on every training batch, without
  // gradients (a distillation teacher), so validation can count their memory too.
  virtual std::vector<std::string> companions() const { return {}; }
};

struct ModifierKind {
  std::string name;
  config::SchemaPtr schema;
  // Builds the plan from its validated, default-filled recipe body.
  std::function<std::unique_ptr<ModifierPlan>(const YAML::Node& body)> create;
};

using ModifierRegistry = config::KindRegistry<ModifierKind>;

namespace detail {
template <class M, class = void>
struct HasCheckEpochs : std::false_type {};
template <class M>
struct HasCheckEpochs<M, std::void_t<decltype(M::check_epochs(std::declval<const typename M::Options&>(), int64_t{},
                                                              std::declval<const std::string&>()))>> : std::true_type {
};
template <class M, class = void>
struct HasCheck : std::false_type {};
template <class M>
struct HasCheck<
    M, std::void_t<decltype(M::check(std::declval<const typename M::Options&>(), std::declval<torch::nn::Module&>()))>>
    : std::true_type {};
template <class M, class = void>
struct HasClaims : std::false_type {};
template <class M>
struct HasClaims<M, std::void_t<decltype(M::claims(std::declval<const typename M::Options&>(),
                                                   std::declval<const torch::nn::Module&>()))>> : std::true_type {};
template <class M, class = void>
struct HasCompanions : std::false_type {};
template <class M>
struct HasCompanions<M, std::void_t<decltype(M::companions(std::declval<const typename M::Options&>()))>>
    : std::true_type {};
template <class M, class = void>
struct HasReshapes : std::false_type {};
template <class M>
struct HasReshapes<M, std::void_t<decltype(M::reshapes_model(std::declval<const typename M::Options&>()))>>
    : std::true_type {};
template <class M, class = void>
struct ConvertsToInt8 : std::false_type {};
template <class M>
struct ConvertsToInt8<M, std::void_t<decltype(M::kConvertsToInt8)>> : std::bool_constant<M::kConvertsToInt8> {};
}  // namespace detail

// The plan of modifier class M (see the top of this file).
template <class M>
class PlanOf : public ModifierPlan {
 public:
  using Options = typename M::Options;
  explicit PlanOf(Options options) : options_(std::move(options)) { validate(options_); }

  void check_epochs(int64_t epochs, const std::string& run) const override {
    if constexpr (detail::HasCheckEpochs<M>::value) M::check_epochs(options_, epochs, run);
  }
  void check(torch::nn::Module& model) const override {
    if constexpr (detail::HasCheck<M>::value) M::check(options_, model);
  }
  std::vector<std::string> claims(const torch::nn::Module& model) const override {
    if constexpr (detail::HasClaims<M>::value) {
      return M::claims(options_, model);
    } else {
      return {};
    }
  }
  std::shared_ptr<Modifier> attach(ModifierContext& ctx) const override { return M::attach(options_, ctx); }
  bool converts_to_int8() const override { return detail::ConvertsToInt8<M>::value; }
  bool reshapes_model() const override {
    if constexpr (detail::HasReshapes<M>::value) {
      return M::reshapes_model(options_);
    } else {
      return false;
    }
  }
  std::vector<std::string> companions() const override {
    if constexpr (detail::HasCompanions<M>::value) {
      return M::companions(options_);
    } else {
      return {};
    }
  }
  const Options& options() const { return options_; }

 private:
  Options options_;
};

template <class M>
ModifierKind modifier_kind(std::string name) {
  return {std::move(name), M::spec().schema(), [](const YAML::Node& body) -> std::unique_ptr<ModifierPlan> {
            return std::make_unique<PlanOf<M>>(M::spec().parse(body));
          }};
}

}  // namespace shrink::train

// The one line that makes modifier class M a recipe's `modifiers: [{name: ...}]` kind.
#define SHRINK_REGISTER_MODIFIER(name, M)                                                        \
  SHRINK_ON_LOAD(modifier_kind_##name) {                                                         \
    ::shrink::train::ModifierRegistry::instance().add(::shrink::train::modifier_kind<M>(#name)); \
  }
