// Leveled logging to stderr; the progress bar coordinates with it so lines never interleave.
#pragma once

#include <string>

#include "core/enum_names.h"
#include "core/error.h"

namespace shrink::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kQuiet = 4 };
// The SHRINK_LOG variable's values.
inline const EnumNames<LogLevel>& enum_names(LogLevel) {
  static const EnumNames<LogLevel> names{{LogLevel::kDebug, "debug"},
                                         {LogLevel::kInfo, "info"},
                                         {LogLevel::kWarn, "warn"},
                                         {LogLevel::kError, "error"},
                                         {LogLevel::kQuiet, "quiet"}};
  return names;
}

void set_log_level(LogLevel level);
// Put before every line (a data-parallel rank's "[rank 1] "); empty by default.
void set_log_prefix(const std::string& prefix);
LogLevel log_level();
void log_line(LogLevel level, const std::string& message);

template <class... Args>
void log_info(const Args&... args) {
  if (log_level() <= LogLevel::kInfo) log_line(LogLevel::kInfo, cat(args...));
}
template <class... Args>
void log_warn(const Args&... args) {
  if (log_level() <= LogLevel::kWarn) log_line(LogLevel::kWarn, cat(args...));
}
template <class... Args>
void log_debug(const Args&... args) {
  if (log_level() <= LogLevel::kDebug) log_line(LogLevel::kDebug, cat(args...));
}

}  // namespace shrink::core
