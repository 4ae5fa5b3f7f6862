// Temp-file-and-rename writes so an interrupted or failed write never leaves a half-written artifact.
#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace shrink::core {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTempMarker = ".tmp.";

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // close() can be where NFS or a full disk reports a lost write, so its result counts.
  int release_and_close() {
    const int r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

std::string reason(int err) { return std::strerror(err); }

void sync_file(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw Error(cat("cannot reopen ", path.string(), " to sync it: ", reason(errno)));
  if (::fsync(fd.get()) != 0) throw Error(cat("cannot sync ", path.string(), " to disk: ", reason(errno)));
}

}  // namespace

fs::path temp_path_for(const fs::path& path) { return path.string() + kTempMarker + std::to_string(::getpid()); }

bool is_temp_file_name(const std::string& name) {
  const size_t at = name.rfind(kTempMarker);
  if (at == std::string::npos || at == 0) return false;
  const std::string pid = name.substr(at + std::strlen(kTempMarker));
  return !pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos;
}

void write_file_fully(const fs::path& path, const void* data, std::size_t size) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw Error(cat("cannot open ", path.string(), " for writing: ", reason(errno)));
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd.get(), p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(cat("failed writing ", path.string(), ": ", reason(n < 0 ? errno : EIO)));
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  if (fd.release_and_close() != 0) throw Error(cat("failed closing ", path.string(), ": ", reason(errno)));
}

void require_replaceable(const fs::path& path) {
  std::error_code ec;
  const auto type = fs::status(path, ec).type();
  if (type == fs::file_type::not_found || type == fs::file_type::regular) return;
  const char* what = type == fs::file_type::directory   ? "a directory"
                     : type == fs::file_type::fifo      ? "a FIFO"
                     : type == fs::file_type::socket    ? "a socket"
                     : type == fs::file_type::block     ? "a block device"
                     : type == fs::file_type::character ? "a character device"
                                                        : "not a regular file";
  throw UsageError(cat(path.string(), ": is ", what, "; shrink writes only regular files and replaces nothing else"));
}

void require_parent_folder(const fs::path& path) {
  const auto parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    throw UsageError(
        cat(path.string(), ": its folder ", parent.string(), " does not exist (shrink creates no folder for it)"));
  }
}

void write_atomically(const fs::path& path, const std::function<void(const fs::path&)>& write) {
  require_replaceable(path);
  const fs::path temp = temp_path_for(path);
  try {
    if (path.has_parent_path()) fs::create_directories(path.parent_path());
    write(temp);
    sync_file(temp);
    fs::rename(temp, path);
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    // Writers name the temporary; the user knows the target. c10 errors carry a backtrace.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    const auto t = what.find(temp.string());
    if (t != std::string::npos) what.replace(t, temp.string().size(), "the temporary file");
    const std::string message = cat("cannot write ", path.string(), ": ", what);
    if (dynamic_cast<const UsageError*>(&e)) throw UsageError(message);
    throw Error(message);
  }
}

void write_bytes_atomically(const fs::path& path, const void* data, std::size_t size) {
  write_atomically(path, [&](const fs::path& temp) { write_file_fully(temp, data, size); });
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  write_bytes_atomically(path, text.data(), text.size());
}

void require_regular_file(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) throw Error(cat(path.string(), ": no such file"));
  if (ec) throw Error(cat(path.string(), ": cannot access: ", ec.message()));
  if (status.type() == fs::file_type::directory) throw Error(cat(path.string(), ": is a directory, not a file"));
  if (status.type() != fs::file_type::regular) {
    throw Error(cat(path.string(), ": not a regular file (a FIFO, socket or device cannot be read as one)"));
  }
}

std::string read_text_file(const fs::path& path) {
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  SHRINK_CHECK(in, path.string(), ": cannot open for reading: ", reason(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  SHRINK_CHECK(!in.bad(), path.string(), ": read failed: ", reason(errno));
  return ss.str();
}

}  // namespace shrink::core
