// Folder locks over flock(2), and the sweep of temporaries that killed writes leave behind.
#include "core/folder_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"

namespace shrink::core {

namespace fs = std::filesystem;

FolderLock::FolderLock(const fs::path& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) {
    // create_directories reports a dangling symbolic link on the way as "File exists": say what it is.
    for (fs::path p = folder; !p.empty() && p != p.parent_path(); p = p.parent_path()) {
      std::error_code ignored;
      if (fs::is_symlink(fs::symlink_status(p, ignored)) && !fs::exists(p, ignored)) {
        throw UsageError(cat(folder.string(), ": cannot create folder: ", p.string(), " is a symbolic link to ",
                             fs::read_symlink(p, ignored).string(), ", which does not exist"));
      }
    }
    throw Error(cat(folder.string(), ": cannot create folder: ", ec.message()));
  }
  const fs::path file = folder / kFileName;
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(cat(file.string(), ": cannot open lock file: ", std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {};
    const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      throw UsageError(cat(folder.string(), ": in use by another shrink process",
                           n > 0 ? cat(" (pid ", std::string(pid, static_cast<size_t>(n)), ")") : std::string(),
                           "; wait for it to finish or choose another output folder"));
    }
    throw Error(cat(file.string(), ": cannot lock: ", std::strerror(err)));
  }
  const std::string pid = std::to_string(::getpid());
  // The pid is only for the message above; failing to record it does not matter.
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t ignored = ::pwrite(fd_, pid.data(), pid.size(), 0);
  }
}

FolderLock::FolderLock(FolderLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);
}

int remove_stale_temp_files(const fs::path& folder) {
  int removed = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && is_temp_file_name(it->path().filename().string())) {
      std::error_code rm_ec;
      if (fs::remove(it->path(), rm_ec)) ++removed;
    }
  }
  return removed;
}

}  // namespace shrink::core
