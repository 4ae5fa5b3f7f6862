// Fuzzes the recipe loader: YAML, schema validation, --set overrides, and the checks that build
// each model. Input: the recipe text, then optionally "\n#set\n" and one override per line.
#include <torch/torch.h>

#include "fuzz_input.h"
#include "recipe/recipe.h"

namespace {

// A recipe may legitimately ask for a model as large as the machine's memory, which libFuzzer's
// malloc limit would report; inputs with a number of 5 or more digits are skipped for that reason.
bool has_large_number(const std::string& text) {
  int run = 0;
  for (char c : text) {
    run = (c >= '0' && c <= '9') ? run + 1 : 0;
    if (run >= 5) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (has_large_number(text)) return 0;
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
