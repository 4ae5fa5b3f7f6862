// HDF5 dataset reading through the C API, with RAII handles and checked shapes and types.
#include "data/hdf5_reader.h"

#include <ATen/ATen.h>
#include <hdf5.h>

#include <vector>

#include "core/atomic_file.h"
#include "core/child_check.h"
#include "core/error.h"
#include "core/memory_budget.h"
#include "io/h5_handle.h"

namespace shrink::data {

namespace fs = std::filesystem;
using core::cat;
using io::H5Handle;

namespace {

struct Opened {
  H5Handle dataset;
  H5Handle type;
  std::vector<int64_t> dims;
};

Opened open_dataset(hid_t file, const fs::path& path, const std::string& name) {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) {
    throw core::Error(cat(path.string(), ": no dataset named '", name, "'"));
  }
  H5Handle ds(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds) throw core::Error(cat(path.string(), ": cannot open dataset '", name, "'"));
  H5Handle space(H5Dget_space(ds.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) throw core::Error(cat(path.string(), ": dataset '", name, "' has an unreadable shape"));
  std::vector<hsize_t> d(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), d.data(), nullptr);
  H5Handle type(H5Dget_type(ds.get()), H5Tclose);
  Opened o{std::move(ds), std::move(type), {}};
  for (hsize_t v : d) o.dims.push_back(static_cast<int64_t>(v));
  return o;
}

std::string shape_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

void read_into(const Opened& o, hid_t mem_type, void* dst, const fs::path& path, const std::string& name) {
  if (H5Dread(o.dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
    throw core::Error(cat(path.string(), ": failed reading dataset '", name, "' (corrupt or truncated file)"));
  }
}

Hdf5Arrays read_unchecked(const fs::path& path, const std::string& samples_name, const std::string& labels_name) {
  H5Handle file = io::open_h5_for_reading(path);

  const Opened s = open_dataset(file.get(), path, samples_name);
  const H5T_class_t s_class = H5Tget_class(s.type.get());
  const size_t s_size = H5Tget_size(s.type.get());
  at::ScalarType s_dtype;
  hid_t s_mem;
  if (s_class == H5T_INTEGER && s_size == 1 && H5Tget_sign(s.type.get()) == H5T_SGN_NONE) {
    s_dtype = at::kByte;
    s_mem = H5T_NATIVE_UINT8;
  } else if (s_class == H5T_FLOAT && s_size == 4) {
    s_dtype = at::kFloat;
    s_mem = H5T_NATIVE_FLOAT;
  } else if (s_class == H5T_INTEGER && (s_size == 4 || s_size == 8) && H5Tget_sign(s.type.get()) == H5T_SGN_2) {
    s_dtype = at::kLong;  // token ids
    s_mem = H5T_NATIVE_INT64;
  } else {
    throw core::Error(cat(path.string(), ": dataset '", samples_name,
                          "' must be uint8, float32, or int32/int64 token ids (got an HDF5 type of class ",
                          int(s_class), ", ", s_size, " bytes)"));
  }
  if (s_dtype == at::kLong && s.dims.size() != 2) {
    throw core::Error(cat(path.string(), ": dataset '", samples_name, "' holds token ids of shape ", shape_str(s.dims),
                          "; expected [N, L] (one padded sequence a sample)"));
  }
  if (s.dims.size() < 2 || s.dims.size() > 4) {
    throw core::Error(cat(path.string(), ": dataset '", samples_name, "' has shape ", shape_str(s.dims),
                          "; expected [N, features], [N, H, W] or [N, C, H, W]"));
  }
  const std::string s_what = cat(path.string(), ": dataset '", samples_name, "'");
  io::check_h5_dataset_size(s.dataset.get(), core::tensor_bytes(s.dims, s_size, s_what), s_what);
  Hdf5Arrays out;
  const auto read_samples = [&] {
    out.samples = at::empty(s.dims, at::TensorOptions().dtype(s_dtype));
    read_into(s, s_mem, out.samples.data_ptr(), path, samples_name);
    if (s_dtype == at::kLong && out.samples.numel() > 0 && out.samples.min().item<int64_t>() < 0) {
      throw core::Error(cat(path.string(), ": dataset '", samples_name, "' holds negative token ids"));
    }
  };
  if (labels_name.empty()) {
    read_samples();
    return out;
  }

  const Opened l = open_dataset(file.get(), path, labels_name);
  if (H5Tget_class(l.type.get()) != H5T_INTEGER) {
    throw core::Error(cat(path.string(), ": dataset '", labels_name, "' must hold integer class labels"));
  }
  if (l.dims.size() != 1) {
    throw core::Error(
        cat(path.string(), ": dataset '", labels_name, "' has shape ", shape_str(l.dims), "; expected [N]"));
  }
  if (l.dims[0] != s.dims[0]) {
    throw core::Error(cat(path.string(), ": '", samples_name, "' holds ", s.dims[0], " samples but '", labels_name,
                          "' holds ", l.dims[0], " labels"));
  }

  const std::string l_what = cat(path.string(), ": dataset '", labels_name, "'");
  io::check_h5_dataset_size(l.dataset.get(), core::tensor_bytes(l.dims, H5Tget_size(l.type.get()), l_what), l_what);

  read_samples();
  out.labels = at::empty({l.dims[0]}, at::TensorOptions().dtype(at::kLong));
  read_into(l, H5T_NATIVE_INT64, out.labels.data_ptr(), path, labels_name);
  if (out.labels.numel() > 0 && out.labels.min().item<int64_t>() < 0) {
    throw core::Error(cat(path.string(), ": dataset '", labels_name, "' holds negative labels"));
  }
  return out;
}

}  // namespace

Hdf5Arrays read_hdf5_arrays(const fs::path& path, const std::string& samples_name, const std::string& labels_name) {
  core::require_regular_file(path);
  core::check_in_child([&] { read_unchecked(path, samples_name, labels_name); }, path.string(), "the HDF5 library");
  return read_unchecked(path, samples_name, labels_name);
}

}  // namespace shrink::data
