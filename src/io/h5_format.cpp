// .h5 state_dicts: datasets in creation order, with a "dtype" attribute so every torch dtype
// (bool, half, bfloat16 included) round-trips exactly.
#include "io/h5_format.h"

#include <ATen/ATen.h>
#include <hdf5.h>

#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/h5_handle.h"

namespace shrink::io {

namespace fs = std::filesystem;
using core::cat;

namespace {

constexpr const char* kFormatTag = "shrink.state_dict/1";

struct DtypeInfo {
  at::ScalarType torch;
  const char* name;
  hid_t (*h5)();  // native HDF5 type of the same width (half types stored as raw 16-bit words)
};

const std::vector<DtypeInfo>& dtypes() {
  static const std::vector<DtypeInfo> table = {
      {at::kFloat, "float32", [] { return H5T_NATIVE_FLOAT; }},
      {at::kDouble, "float64", [] { return H5T_NATIVE_DOUBLE; }},
      {at::kHalf, "float16", [] { return H5T_NATIVE_UINT16; }},
      {at::kBFloat16, "bfloat16", [] { return H5T_NATIVE_UINT16; }},
      {at::kLong, "int64", [] { return H5T_NATIVE_INT64; }},
      {at::kInt, "int32", [] { return H5T_NATIVE_INT32; }},
      {at::kShort, "int16", [] { return H5T_NATIVE_INT16; }},
      {at::kChar, "int8", [] { return H5T_NATIVE_INT8; }},
      {at::kByte, "uint8", [] { return H5T_NATIVE_UINT8; }},
      {at::kBool, "bool", [] { return H5T_NATIVE_UINT8; }},
  };
  return table;
}

const DtypeInfo& info_for(at::ScalarType t) {
  for (const auto& d : dtypes()) {
    if (d.torch == t) return d;
  }
  throw core::Error(cat("cannot store dtype ", t, " in .h5"));
}

void write_string_attr(hid_t obj, const char* name, const std::string& value) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.size() + 1);
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle attr(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  SHRINK_CHECK(attr && H5Awrite(attr.get(), type.get(), value.c_str()) >= 0, "failed writing HDF5 attribute ", name);
}

std::string read_string_attr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return "";
  H5Handle attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0) return "";
  const size_t size = H5Tget_size(type.get());
  std::string value(size, '\0');
  if (H5Aread(attr.get(), type.get(), value.data()) < 0) return "";
  value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
  return value;
}

}  // namespace

void write_h5(const fs::path& path, const StateDict& sd) {
  silence_h5_errors();
  core::write_atomically(path, [&](const fs::path& temp) {
    H5Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    // Creation order is tracked so readers get tensors back in state_dict order.
    H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Handle file(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), H5Fclose);
    SHRINK_CHECK(file, "cannot create HDF5 file ", temp);
    write_string_attr(file.get(), "format", kFormatTag);
    for (const auto& e : sd) {
      SHRINK_CHECK(e.name.find('/') == std::string::npos, "tensor name '", e.name, "' contains '/'");
      const auto t = e.tensor.detach().cpu().contiguous();
      const auto& info = info_for(t.scalar_type());
      std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
      H5Handle space(t.dim() == 0 ? H5Screate(H5S_SCALAR)
                                  : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                     H5Sclose);
      H5Handle ds(H5Dcreate2(file.get(), e.name.c_str(), info.h5(), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT),
                  H5Dclose);
      SHRINK_CHECK(ds, "cannot create HDF5 dataset '", e.name, "' in ", temp);
      if (t.numel() > 0) {
        SHRINK_CHECK(H5Dwrite(ds.get(), info.h5(), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) >= 0,
                     "failed writing '", e.name, "' to ", temp);
      }
      write_string_attr(ds.get(), "dtype", info.name);
      if (e.is_buffer) write_string_attr(ds.get(), "kind", "buffer");
    }
    SHRINK_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0, "failed flushing ", temp);
  });
}

StateDict read_h5(const fs::path& path) {
  H5Handle file = open_h5_for_reading(path);
  if (read_string_attr(file.get(), "format") != kFormatTag) {
    throw core::Error(cat(path.string(), ": not a shrink state_dict (missing format attribute '", kFormatTag, "')"));
  }
  H5G_info_t ginfo;
  if (H5Gget_info(file.get(), &ginfo) < 0) throw core::Error(cat(path.string(), ": cannot list datasets"));
  StateDict out;
  for (hsize_t i = 0; i < ginfo.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(file.get(), ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw core::Error(cat(path.string(), ": cannot read dataset name #", i));
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(file.get(), ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));

    H5Handle ds(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds) throw core::Error(cat(path.string(), ": cannot open dataset '", name, "'"));
    const std::string dtype = read_string_attr(ds.get(), "dtype");
    const DtypeInfo* info = nullptr;
    for (const auto& d : dtypes()) {
      if (dtype == d.name) info = &d;
    }
    if (!info) throw core::Error(cat(path.string(), ": dataset '", name, "' has unknown dtype '", dtype, "'"));
    H5Handle space(H5Dget_space(ds.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) throw core::Error(cat(path.string(), ": dataset '", name, "' has an unreadable shape"));
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    H5Handle ftype(H5Dget_type(ds.get()), H5Tclose);
    H5Handle mtype(info->h5(), nullptr);
    if (H5Tget_size(ftype.get()) != H5Tget_size(mtype.get())) {
      throw core::Error(cat(path.string(), ": dataset '", name, "' stores ", H5Tget_size(ftype.get()),
                            "-byte elements but its dtype '", dtype, "' needs ", H5Tget_size(mtype.get())));
    }
    std::vector<int64_t> shape(dims.begin(), dims.end());
    auto t = at::empty(shape, at::TensorOptions().dtype(info->torch));
    if (t.numel() > 0 && H5Dread(ds.get(), info->h5(), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0) {
      throw core::Error(cat(path.string(), ": failed reading dataset '", name, "' (truncated or corrupt file)"));
    }
    out.push_back({name, t, read_string_attr(ds.get(), "kind") == "buffer"});
  }
  return out;
}

}  // namespace shrink::io
