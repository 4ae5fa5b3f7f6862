// Fuzzes the recipe loader: YAML, schema validation, user patterns, --set overrides, and the checks
// that build each model on the meta device. Input: the recipe text, then optionally "\n#set\n" and
// one override per line.
#include <torch/torch.h>

#include "core/memory_budget.h"
#include "fuzz_input.h"
#include "recipe/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Validation allocates no model: what a recipe asks for is estimated and refused past the
  // budget, which sits well under libFuzzer's 2 GB malloc limit, so any size may be tried.
  shrink::core::set_memory_budget_bytes(uint64_t{512} << 20);
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto split = text.find("\n#set\n");
  std::vector<std::string> overrides;
  if (split != std::string::npos) {
    const std::string rest = text.substr(split + 6);
    for (size_t at = 0; at < rest.size();) {
      const size_t end = std::min(rest.find('\n', at), rest.size());
      if (end > at) overrides.push_back(rest.substr(at, end - at));
      at = end + 1;
    }
  }
  const auto path = shrink::fuzz::input_file(data, split == std::string::npos ? size : split, "recipe.yaml");
  // Recipe errors locate themselves by file:line:column, "--set" or key, so any Error will do.
  shrink::fuzz::expect_clean([&] { shrink::recipe::load_recipe(path, overrides); }, "");
  return 0;
}
