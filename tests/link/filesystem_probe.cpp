// Links as every shrink executable does, beside a library exporting a broken remove_all, and
// calls remove_all: it must bind to libstdc++'s (issue 11's crash under a pip wheel's LibTorch).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

extern "C" int shrink_probe_library_loaded();

int main() {
  namespace fs = std::filesystem;
  if (shrink_probe_library_loaded() != 1) return 1;
  const fs::path dir = fs::temp_directory_path() / ("shrink-filesystem-probe-" + std::to_string(::getpid()));
  fs::create_directories(dir / "inner");
  const auto removed = fs::remove_all(dir);
  if (removed != 2 || fs::exists(dir)) {
    std::fprintf(stderr, "remove_all removed %ju entries of 2\n", static_cast<std::uintmax_t>(removed));
    return 1;
  }
  std::printf("remove_all bound to libstdc++\n");
  return 0;
}
