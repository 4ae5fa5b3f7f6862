// Temp-file-and-rename writes so an interrupted run never leaves a half-written artifact.
#include "core/atomic_file.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace shrink::core {

namespace fs = std::filesystem;

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  const fs::path temp = path.string() + ".tmp." + std::to_string(::getpid());
  try {
    write(temp);
    fs::rename(temp, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  write_atomically(path, [&](const fs::path& temp) {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    SHRINK_CHECK(out, "cannot open ", temp, " for writing");
    out << text;
    out.flush();
    SHRINK_CHECK(out, "failed writing ", temp);
  });
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  SHRINK_CHECK(in, "cannot open ", path, " for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace shrink::core
