// Progress bar: redraws at most 10 times a second on a TTY; elsewhere one line every ~10 s.
#include "core/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace shrink::core {

namespace {
std::atomic<bool> g_line_active{false};

std::string format_seconds(double s) {
  if (s < 0) s = 0;
  const int total = static_cast<int>(s + 0.5);
  char buf[32];
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%d:%02d", total / 60, total % 60);
  }
  return buf;
}
}  // namespace

bool ProgressBar::stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

void ProgressBar::clear_active_line() {
  if (g_line_active.exchange(false)) {
    std::fputs("\r\033[2K", stderr);
  }
}

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      enabled_(enabled),
      tty_(stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && tty_ && !finished_) clear_active_line();
}

void ProgressBar::update(int64_t done, const std::function<std::string()>& status) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since < (tty_ ? 0.1 : 10.0)) return;
  last_draw_ = now;
  draw(done, status ? status() : std::string(), false);
}

void ProgressBar::finish(const std::string& status) {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw(total_, status, true);
}

void ProgressBar::draw(int64_t done, const std::string& status, bool final_line) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double frac = static_cast<double>(done) / static_cast<double>(total_);
  const double eta = frac > 0 ? elapsed * (1.0 - frac) / frac : 0.0;
  std::string line = label_;
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth);
    line += " [";
    for (int i = 0; i < kWidth; ++i) line += i < filled ? '#' : '.';
    line += "]";
  }
  char counts[96];
  std::snprintf(counts, sizeof counts, " %lld/%lld %s", static_cast<long long>(done), static_cast<long long>(total_),
                final_line ? format_seconds(elapsed).c_str() : ("ETA " + format_seconds(eta)).c_str());
  line += counts;
  if (!status.empty()) line += "  " + status;
  if (tty_) {
    std::fprintf(stderr, "\r\033[2K%s%s", line.c_str(), final_line ? "\n" : "");
    g_line_active = !final_line;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace shrink::core
