// Error types that map to shrink's exit codes, and the message-building helper every check uses.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace shrink::core {

template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// A runtime failure: bad data, an unreadable file, a diverging loss. Exit code 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The user asked for something malformed (command line or recipe). Exit code 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

// One problem found in a recipe, located as precisely as the source allows.
struct Diagnostic {
  std::string file;     // recipe path, or "--set" for an override
  int line = 0;         // 1-based; 0 when unknown
  int column = 0;       // 1-based; 0 when unknown
  std::string key;      // dotted key path, e.g. stages.0.train.epochs
  std::string message;  // what was expected

  std::string format() const;
};

// Every problem validation found, so the user fixes them all in one go. Exit code 2.
class RecipeError : public UsageError {
 public:
  explicit RecipeError(std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
};

int exit_code_for(const std::exception& e);

}  // namespace shrink::core

#define SHRINK_CHECK(cond, ...)                                                 \
  do {                                                                          \
    if (!(cond)) throw ::shrink::core::Error(::shrink::core::cat(__VA_ARGS__)); \
  } while (0)
