// Log sink: writes whole lines to stderr, clearing a live progress bar first.
#include "core/log.h"

#include <cstdio>
#include <mutex>

#include "core/progress.h"

namespace shrink::core {

namespace {
LogLevel g_level = LogLevel::kInfo;
std::mutex g_mutex;
std::string g_prefix;
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void set_log_prefix(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_prefix = prefix;
}

void log_line(LogLevel level, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  ProgressBar::clear_active_line();
  const char* tag = level == LogLevel::kWarn ? "warning: " : level == LogLevel::kError ? "error: " : "";
  std::fprintf(stderr, "%s%s%s\n", g_prefix.c_str(), tag, message.c_str());
  std::fflush(stderr);
}

}  // namespace shrink::core
