// User patterns (which tensors to prune, which layers to keep float) as RE2 regular expressions:
// linear-time matching with no recursion and bounded memory, whatever the pattern.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace re2 {
class RE2;
}  // namespace re2

namespace shrink::core {

class Pattern {
 public:
  // Throws a UsageError naming `what` (the key or flag) and the pattern, with RE2's reason, when
  // RE2 rejects it: a syntax error, a construct RE2 leaves out (backreferences, lookaround), or a
  // program past RE2's memory bound.
  Pattern(const std::string& pattern, const std::string& what);

  // True when the pattern matches somewhere in `text` (std::regex_search's rule: unanchored).
  bool search(const std::string& text) const;

 private:
  std::shared_ptr<const re2::RE2> re_;
};

// Each of `patterns` compiled (as Pattern does, naming `what`), once for every text it meets.
std::vector<Pattern> compile_patterns(const std::vector<std::string>& patterns, const std::string& what);
bool search_any(const std::vector<Pattern>& patterns, const std::string& text);

}  // namespace shrink::core
