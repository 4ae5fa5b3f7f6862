// Scratch files and the outcome rule for the fuzz targets.
#include "fuzz_input.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/error.h"

namespace shrink::fuzz {

namespace fs = std::filesystem;

fs::path input_file(const uint8_t* data, size_t size, const std::string& file_name) {
  static const fs::path dir = [] {
    const char* shm = "/dev/shm";
    fs::path d =
        fs::path(fs::exists(shm) ? shm : fs::temp_directory_path()) / ("shrink-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  const fs::path path = dir / file_name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

void expect_clean(const std::function<void()>& read, const std::string& must_name) {
  try {
    read();
  } catch (const core::Error& e) {
    if (std::string(e.what()).find(must_name) == std::string::npos) {
      std::fprintf(stderr, "finding: error without '%s': %s\n", must_name.c_str(), e.what());
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "finding: not a shrink Error: %s\n", e.what());
    std::abort();
  }
}

}  // namespace shrink::fuzz
