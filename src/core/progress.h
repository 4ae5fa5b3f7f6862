// Progress display for long loops: a redrawn bar on a terminal, periodic plain lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace shrink::core {

class ProgressBar {
 public:
  // total: number of steps; label: printed before the bar (e.g. "epoch 3/10").
  ProgressBar(std::string label, int64_t total, bool enabled = true);
  ~ProgressBar();

  // Advances to `done` steps. `status` (loss, accuracy, throughput) is only called when a line is
  // actually drawn, so callers can compute costly figures lazily.
  void update(int64_t done, const std::function<std::string()>& status);
  // Prints the final state on its own line.
  void finish(const std::string& status);

  // Erases a bar that is being drawn so a log line can be printed cleanly.
  static void clear_active_line();
  static bool stderr_is_terminal();

 private:
  void draw(int64_t done, const std::string& status, bool final_line);

  std::string label_;
  int64_t total_;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace shrink::core
