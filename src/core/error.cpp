// Formatting of recipe diagnostics and the exception → exit code mapping.
#include "core/error.h"

#include "core/format.h"

namespace shrink::core {

std::string Diagnostic::format() const {
  std::ostringstream os;
  os << file;
  if (line > 0) os << ':' << line << ':' << column;
  os << ": ";
  // A key or a value from a hostile recipe can be megabytes long.
  if (!key.empty()) os << cut_for_message(key, 200) << ": ";
  os << cut_for_message(message, 2000);
  return os.str();
}

static std::string join_diagnostics(const std::vector<Diagnostic>& ds) {
  std::string out;
  for (size_t i = 0; i < ds.size(); ++i) {
    if (i) out += '\n';
    out += ds[i].format();
  }
  return out;
}

RecipeError::RecipeError(std::vector<Diagnostic> diagnostics)
    : UsageError(join_diagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}

int exit_code_for(const std::exception& e) { return dynamic_cast<const UsageError*>(&e) ? 2 : 1; }

}  // namespace shrink::core
