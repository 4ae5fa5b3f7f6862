// The `distill` modifier of training stages: a teacher (a model of the recipe, or any file shrink
// wrote) and Hinton KD settings.
#pragma once

#include <optional>
#include <string>

#include "distill/distill_modifier.h"
#include "recipe/modifier_kind.h"

namespace shrink::recipe {

// A distill modifier as a recipe declares it.
class DistillPlan : public ModifierPlan {
 public:
  DistillPlan(std::string teacher, std::string teacher_file, distill::DistillOptions options);

  void check(torch::nn::Module& student) const override;
  void check_epochs(int64_t epochs, const std::string& run) const override;
  std::shared_ptr<train::Modifier> attach(ModelSlot& slot, StageContext& ctx) const override;

  // The teacher on ctx.device: the recipe model as the stages before left it, or the file, restored
  // once and kept for the rest of the stage (the distill stage evaluates the same one).
  models::Model teacher(const ModelSlot& student, StageContext& ctx) const;
  // The recipe model's name or the file's path, as reports name the teacher.
  const std::string& teacher_name() const { return teacher_file_.empty() ? teacher_ : teacher_file_; }

 private:
  std::string teacher_, teacher_file_;
  distill::DistillOptions options_;
  mutable std::optional<models::Model> restored_;
};

ModifierKind distill_modifier_kind();
// The keys of a distill modifier (teacher, teacher_file, temperature, alpha, window, features,
// cache_teacher_logits), shared with the `distill` stage, and their parse.
std::vector<Field> distill_modifier_fields();
std::unique_ptr<DistillPlan> parse_distill_modifier(const YAML::Node& body);

}  // namespace shrink::recipe
