// Bounds on a recipe's size, checked on the YAML event stream before any node tree is built.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace shrink::recipe {

// yaml-cpp spends about a kilobyte a node and an alias repeats its anchor's whole subtree for every
// later walk, so a recipe is measured before it is loaded: nodes are counted with each alias
// counted as the nodes it stands for.
struct RecipeLimits {
  // A recipe is written by hand: a 1,000-name class list or a 30,000-entry `hidden` list is well
  // under a megabyte, and yaml-cpp takes ~8 bytes of memory and ~0.4 us per byte of a long scalar.
  static constexpr int64_t kMaxBytes = 4 << 20;
  static constexpr int64_t kMaxNodes = 100000;
  static constexpr int64_t kMaxModels = 1000;
  static constexpr int64_t kMaxStages = 10000;
};

// Throws a UsageError naming the file when it is over kMaxBytes, before reading it.
void check_recipe_bytes(const std::filesystem::path& path);

// Throws a RecipeError at the place where the count passes kMaxNodes; YAML syntax errors are left
// for the loader to report. Linear in the text's length.
void check_recipe_size(const std::string& text, const std::filesystem::path& path);

}  // namespace shrink::recipe
