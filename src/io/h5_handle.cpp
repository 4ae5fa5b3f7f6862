// Opening HDF5 files with shrink's own error reporting.
#include "io/h5_handle.h"

#include <mutex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/format.h"
#include "core/memory_budget.h"

namespace shrink::io {

void silence_h5_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string h5_error_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        if (e->desc) *static_cast<std::string*>(out) = e->desc;
        return 0;
      },
      &reason);
  H5Eclear2(H5E_DEFAULT);
  // The file driver's entry reads "..., errno = 28, error message = 'No space left on device', ...".
  const std::string tag = "error message = '";
  const auto at = reason.find(tag);
  if (at != std::string::npos) {
    const auto start = at + tag.size();
    reason = reason.substr(start, reason.find('\'', start) - start);
  }
  return reason;
}

void check_h5_dataset_size(hid_t dataset, uint64_t declared_bytes, const std::string& what) {
  core::check_fits_in_memory(declared_bytes, what);
  if (declared_bytes == 0) return;
  H5Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
  const int filters = dcpl ? H5Pget_nfilters(dcpl.get()) : 0;
  const uint64_t stored = H5Dget_storage_size(dataset);
  H5Handle file(H5Iget_file_id(dataset), H5Fclose);
  hsize_t file_size = 0;
  if (!file || H5Fget_filesize(file.get(), &file_size) < 0)
    throw core::Error(core::cat(what, ": cannot size its file"));
  const uint64_t max_ratio = filters > 0 ? 1100 : 1;
  if (stored > file_size || stored > UINT64_MAX / max_ratio || stored * max_ratio < declared_bytes) {
    throw core::Error(core::cat(
        what, ": declares ", core::human_bytes(static_cast<int64_t>(std::min<uint64_t>(declared_bytes, INT64_MAX))),
        " of data but its file holds ", core::human_bytes(static_cast<int64_t>(std::min<uint64_t>(stored, INT64_MAX))),
        " for it (", core::human_bytes(static_cast<int64_t>(file_size)), " file; truncated or corrupt)"));
  }
}

H5Handle open_h5_for_reading(const std::filesystem::path& path) {
  silence_h5_errors();
  core::require_regular_file(path);
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    throw core::Error(core::cat(path.string(), ": not an HDF5 file (or its header is corrupt)"));
  }
  H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file) throw core::Error(core::cat(path.string(), ": cannot open HDF5 file (truncated or corrupt?)"));
  return file;
}

}  // namespace shrink::io
