// RAII ownership of HDF5 identifiers, shared by the dataset reader and the state_dict format.
#pragma once

#include <hdf5.h>

#include <filesystem>
#include <string>

namespace shrink::io {

class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  H5Handle(H5Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  H5Handle& operator=(H5Handle&& o) noexcept {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = -1;
    return *this;
  }
  ~H5Handle() { reset(); }
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  // Closes now and says whether HDF5 managed to: closing a file flushes its last writes.
  bool close() {
    const herr_t r = id_ >= 0 && closer_ ? closer_(id_) : 0;
    id_ = -1;
    return r >= 0;
  }
  void reset() {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Opens an HDF5 file read-only; throws an Error naming the file when it is missing or not HDF5.
// Also silences the library's own stderr error stack: shrink reports errors itself.
H5Handle open_h5_for_reading(const std::filesystem::path& path);
void silence_h5_errors();

// The innermost message on HDF5's error stack (for a failed write, the system's reason, e.g.
// "No space left on device"), then clears the stack; "" when it is empty.
std::string h5_error_reason();

// Before a dataset is read into memory: its declared size must fit the memory budget and be
// backed by the bytes its file holds (allowing for deflate's at most ~1032:1 ratio when filtered),
// so a forged shape in a tiny file is refused instead of allocated. Errors start with `what`.
void check_h5_dataset_size(hid_t dataset, uint64_t declared_bytes, const std::string& what);

}  // namespace shrink::io
