// Opening HDF5 files with shrink's own error reporting.
#include "io/h5_handle.h"

#include <mutex>

#include "core/error.h"

namespace shrink::io {

void silence_h5_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

H5Handle open_h5_for_reading(const std::filesystem::path& path) {
  silence_h5_errors();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw core::Error(core::cat(path.string(), ": no such file"));
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    throw core::Error(core::cat(path.string(), ": not an HDF5 file (or its header is corrupt)"));
  }
  H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file) throw core::Error(core::cat(path.string(), ": cannot open HDF5 file (truncated or corrupt?)"));
  return file;
}

}  // namespace shrink::io
