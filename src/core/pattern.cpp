// RE2-backed user patterns.
#include "core/pattern.h"

#include <re2/re2.h>

#include "core/error.h"
#include "core/format.h"

namespace shrink::core {

namespace {

// RE2's default program budget (8 MiB), stated: a pattern over it is refused, not grown into.
constexpr int64_t kMaxProgramBytes = int64_t{8} << 20;

}  // namespace

Pattern::Pattern(const std::string& pattern, const std::string& what) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(kMaxProgramBytes);
  auto re = std::make_shared<const RE2>(pattern, options);
  if (!re->ok()) {
    throw UsageError(cat(what, ": '", cut_for_message(pattern),
                         "' is not a valid pattern (RE2 syntax): ", cut_for_message(re->error())));
  }
  re_ = std::move(re);
}

bool Pattern::search(const std::string& text) const { return RE2::PartialMatch(text, *re_); }

std::vector<Pattern> compile_patterns(const std::vector<std::string>& patterns, const std::string& what) {
  std::vector<Pattern> out;
  out.reserve(patterns.size());
  for (const auto& p : patterns) out.emplace_back(p, what);
  return out;
}

bool search_any(const std::vector<Pattern>& patterns, const std::string& text) {
  for (const auto& p : patterns) {
    if (p.search(text)) return true;
  }
  return false;
}

}  // namespace shrink::core
