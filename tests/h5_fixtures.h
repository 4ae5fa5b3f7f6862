// Writing small HDF5 files for tests: one dataset at a time through the C API.
#pragma once

#include <hdf5.h>

#include <filesystem>
#include <vector>

namespace shrink::testing {

// Writes one dataset of the given HDF5 native type into `file`.
inline void put(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& dims, const void* data) {
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(ds);
  H5Sclose(space);
}

// A file created (truncated) for the scope's length.
struct H5File {
  explicit H5File(const std::filesystem::path& p) : id(H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {}
  ~H5File() { H5Fclose(id); }
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;
  hid_t id;
};

}  // namespace shrink::testing
