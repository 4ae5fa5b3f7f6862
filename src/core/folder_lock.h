// An exclusive, process-lifetime lock on a folder, so two shrink processes never write one run.
#pragma once

#include <filesystem>

namespace shrink::core {

// flock() on "<folder>/.shrink.lock": the kernel drops it when the process ends, however it ends,
// so a killed run never leaves a stale lock. The file holds the owner's pid for messages.
class FolderLock {
 public:
  static constexpr const char* kFileName = ".shrink.lock";

  // Creates the folder if needed. Throws a UsageError naming the folder and the holder's pid when
  // another process holds the lock, an Error when the folder cannot be created or locked.
  explicit FolderLock(const std::filesystem::path& folder);
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  FolderLock(FolderLock&& other) noexcept;
  ~FolderLock();

 private:
  int fd_ = -1;
};

// Removes the temporaries ("*.tmp.<pid>") that interrupted atomic writes left anywhere under
// `folder`; call it while holding the folder's lock. Returns how many it removed.
int remove_stale_temp_files(const std::filesystem::path& folder);

}  // namespace shrink::core
