// .h5 state_dicts: datasets (dense) and groups (compressed) in creation order, with a "dtype"
// attribute so every torch dtype (bool, half, bfloat16 included) round-trips exactly.
#include "io/h5_format.h"

#include <ATen/ATen.h>
#include <hdf5.h>
#include <zlib.h>

#include "core/atomic_file.h"
#include "core/child_check.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory_budget.h"
#include "io/h5_handle.h"

namespace shrink::io {

namespace fs = std::filesystem;
using core::cat;

namespace {

constexpr const char* kFormatTag = "shrink.state_dict/1";
constexpr const char* kDescriptionAttr = "model";
// HDF5 keeps an attribute in one object header message, which caps it near 64 KiB; a longer
// description (a long class list or `hidden` list) continues in attributes "model.1", "model.2"...
// (The 1.8 format's dense attribute storage would lift the cap, but an image of a file in that format
// taken before closing it fails its superblock checksum.)
constexpr size_t kDescriptionPartBytes = 60000;
constexpr const char* kDescriptionPartsAttr = "model_parts";
// A recipe is at most 4 MiB; its JSON, data map included, stays far below this.
constexpr size_t kMaxDescriptionBytes = 64 << 20;

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

const DtypeInfo& info_named(const std::string& name, const std::string& what) {
  for (const auto& d : dtypes()) {
    if (name == d.name) return d;
  }
  throw core::Error(cat(what, " has unknown dtype '", name, "'"));
}

void write_string_attr(hid_t obj, const char* name, const std::string& value) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.size() + 1);
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle attr(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  SHRINK_CHECK(attr && H5Awrite(attr.get(), type.get(), value.c_str()) >= 0, "failed writing HDF5 attribute ", name,
               ": ", h5_error_reason());
}

// Fixed-length (shrink, HDF5 tools) or variable-length (h5py's default for str) string attributes.
std::string read_string_attr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return "";
  H5Handle attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  H5Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1) return "";
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* text = nullptr;
    if (H5Aread(attr.get(), mem.get(), &text) < 0 || !text) return "";
    std::string value(text);
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(type.get());
  if (size > kMaxDescriptionBytes) {
    throw core::Error(cat("attribute '", name, "' declares a string of ", size, " bytes (at most ",
                          kMaxDescriptionBytes, "): the file is damaged"));
  }
  std::string value(size, '\0');
  if (H5Aread(attr.get(), type.get(), value.data()) < 0) return "";
  value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
  return value;
}

void write_ints_attr(hid_t obj, const char* name, const std::vector<int64_t>& values) {
  const hsize_t n = values.size();
  H5Handle space(n == 0 ? H5Screate(H5S_NULL) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5Handle attr(H5Acreate2(obj, name, H5T_NATIVE_INT64, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  SHRINK_CHECK(attr && (n == 0 || H5Awrite(attr.get(), H5T_NATIVE_INT64, values.data()) >= 0),
               "failed writing HDF5 attribute ", name, ": ", h5_error_reason());
}

std::vector<int64_t> read_ints_attr(hid_t obj, const char* name, const std::string& what) {
  if (H5Aexists(obj, name) <= 0) throw core::Error(cat(what, ": missing attribute '", name, "'"));
  H5Handle attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  H5Handle space(H5Aget_space(attr.get()), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > 64) throw core::Error(cat(what, ": malformed attribute '", name, "'"));
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (n > 0 && H5Aread(attr.get(), H5T_NATIVE_INT64, v.data()) < 0)
    throw core::Error(cat(what, ": unreadable attribute '", name, "'"));
  return v;
}

// Every dataset shrink writes carries the CRC-32 of its elements as they are in memory (HDF5 keeps
// no checksum of unfiltered data): a flipped payload byte loaded silently before.
constexpr const char* kChecksumAttr = "crc32";

int64_t crc32_of(const void* data, size_t size) {
  const auto* bytes = static_cast<const Bytef*>(data);
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t left = size; left > 0;) {
    const auto n = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, bytes, n);
    bytes += n;
    left -= n;
  }
  return static_cast<int64_t>(crc);
}

int64_t crc32_of(const at::Tensor& contiguous) { return crc32_of(contiguous.data_ptr(), contiguous.nbytes()); }

// Compares `computed` with the CRC-32 stored in attribute `attr` of `obj`; false when there is none
// (a file from an older shrink or another tool). A mismatch is an Error starting with `label`.
bool verify_crc32(hid_t obj, const char* attr, int64_t computed, const std::string& label) {
  if (H5Aexists(obj, attr) <= 0) return false;
  const auto stored = read_ints_attr(obj, attr, label);
  if (stored.size() != 1 || stored[0] != computed) {
    throw core::Error(cat(label, " checksum mismatch (stored CRC-32 ", stored.empty() ? -1 : stored[0],
                          ", the contents give ", computed, "): the file is damaged"));
  }
  return true;
}

// The model description's CRC-32, on the root beside it: a flipped digit in it (a layer width, a
// data seed) would otherwise rebuild another model or evaluate on other data without a word.
constexpr const char* kDescriptionChecksumAttr = "model_crc32";

// Writes `t` as dataset `name` under `parent`. The parts of a compressed tensor also get HDF5's
// byte-shuffle + deflate filters (lossless): bitmasks and index arrays of pruned tensors have low
// entropy, and shuffled float32 values still give up their repetitive exponent bytes.
void write_dataset(hid_t parent, const std::string& name, const at::Tensor& tensor, bool deflate,
                   const std::string& what) {
  const auto t = tensor.detach().cpu().contiguous();
  const auto& info = info_for(t.scalar_type());
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  H5Handle space(
      t.dim() == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
      H5Sclose);
  H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  // No modification times in object headers: the same tensors give the same bytes (a resumed
  // run's files equal an uninterrupted run's).
  H5Pset_obj_track_times(dcpl.get(), false);
  if (deflate && t.dim() == 1 && t.numel() >= 1024 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
    const hsize_t chunk = std::min<hsize_t>(dims[0], 1 << 16);
    H5Pset_chunk(dcpl.get(), 1, &chunk);
    if (t.element_size() > 1) H5Pset_shuffle(dcpl.get());
    H5Pset_deflate(dcpl.get(), 6);
  }
  H5Handle ds(H5Dcreate2(parent, name.c_str(), info.h5(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose);
  SHRINK_CHECK(ds, "cannot create HDF5 dataset for '", what, "': ", h5_error_reason());
  if (t.numel() > 0) {
    SHRINK_CHECK(H5Dwrite(ds.get(), info.h5(), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) >= 0, "failed writing '",
                 what, "': ", h5_error_reason());
  }
  write_string_attr(ds.get(), "dtype", info.name);
  write_ints_attr(ds.get(), kChecksumAttr, {t.numel() > 0 ? crc32_of(t) : 0});
}

// A dataset without shrink's dtype attribute (h5py, other tools): its dtype from the HDF5 type.
const DtypeInfo& info_of_type(hid_t type, const std::string& what) {
  const H5T_class_t c = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  const bool is_signed = c == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
  // h5py stores numpy bools as an 8-bit enum (FALSE = 0, TRUE = 1).
  if (c == H5T_ENUM && size == 1) return info_for(at::kBool);
  if (c == H5T_FLOAT && size == 4) return info_for(at::kFloat);
  if (c == H5T_FLOAT && size == 8) return info_for(at::kDouble);
  if (c == H5T_FLOAT && size == 2) return info_for(at::kHalf);
  if (c == H5T_INTEGER && size == 8 && is_signed) return info_for(at::kLong);
  if (c == H5T_INTEGER && size == 4 && is_signed) return info_for(at::kInt);
  if (c == H5T_INTEGER && size == 2 && is_signed) return info_for(at::kShort);
  if (c == H5T_INTEGER && size == 1) return info_for(is_signed ? at::kChar : at::kByte);
  throw core::Error(cat(what, ": HDF5 type (class ", static_cast<int>(c), ", ", size,
                        " bytes) has no torch dtype; expected a float, a signed integer, uint8 or bool"));
}

// `unverified` is set when the dataset has no checksum (older shrink files, other tools).
at::Tensor read_dataset(hid_t parent, const std::string& name, const std::string& what, bool& unverified) {
  H5Handle ds(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds) throw core::Error(cat(what, ": cannot open dataset '", name, "'"));
  const std::string dtype_name = read_string_attr(ds.get(), "dtype");
  H5Handle file_type(H5Dget_type(ds.get()), H5Tclose);
  const auto& info = dtype_name.empty() ? info_of_type(file_type.get(), what) : info_named(dtype_name, what);
  H5Handle space(H5Dget_space(ds.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 16) throw core::Error(cat(what, ": unreadable shape"));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  H5Handle ftype(H5Dget_type(ds.get()), H5Tclose);
  if (H5Tget_size(ftype.get()) != H5Tget_size(info.h5())) {
    throw core::Error(cat(what, ": stores ", H5Tget_size(ftype.get()), "-byte elements but its dtype '", info.name,
                          "' needs ", H5Tget_size(info.h5())));
  }
  const std::vector<int64_t> shape(dims.begin(), dims.end());
  check_h5_dataset_size(ds.get(), core::tensor_bytes(shape, H5Tget_size(ftype.get()), what), what);
  auto t = at::empty(shape, at::TensorOptions().dtype(info.torch));
  if (t.numel() > 0 && H5Dread(ds.get(), info.h5(), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0) {
    throw core::Error(cat(what, ": failed reading (truncated or corrupt file)"));
  }
  if (!verify_crc32(ds.get(), kChecksumAttr, t.numel() > 0 ? crc32_of(t) : 0, cat(what, ":"))) unverified = true;
  return t;
}

}  // namespace

void write_h5(const fs::path& path, const std::vector<StoredEntry>& entries, const nlohmann::json& description) {
  silence_h5_errors();
  const std::string description_text = description.is_null() ? "" : description.dump();
  SHRINK_CHECK(description_text.size() <= kMaxDescriptionBytes, path.string(), ": model description of ",
               description_text.size(), " bytes is over the limit of ", kMaxDescriptionBytes, " bytes");
  // HDF5 builds the file in memory and shrink writes the image: HDF5 1.10 crashes closing a
  // dataset whose buffered write hit a full disk, and the image's write reports errno cleanly.
  std::string image;
  {
    H5Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    // Creation order is tracked so readers get tensors back in state_dict order.
    H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_fapl_core(fapl.get(), 1 << 20, /*backing_store=*/0);
    H5Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose);
    SHRINK_CHECK(file, path.string(), ": cannot create HDF5 image: ", h5_error_reason());
    write_string_attr(file.get(), "format", kFormatTag);
    if (!description_text.empty()) {
      const size_t parts = (description_text.size() + kDescriptionPartBytes - 1) / kDescriptionPartBytes;
      write_string_attr(file.get(), kDescriptionAttr, description_text.substr(0, kDescriptionPartBytes));
      for (size_t p = 1; p < parts; ++p) {
        write_string_attr(file.get(), cat(kDescriptionAttr, ".", p).c_str(),
                          description_text.substr(p * kDescriptionPartBytes, kDescriptionPartBytes));
      }
      if (parts > 1) write_ints_attr(file.get(), kDescriptionPartsAttr, {static_cast<int64_t>(parts)});
      write_ints_attr(file.get(), kDescriptionChecksumAttr,
                      {crc32_of(description_text.data(), description_text.size())});
    }
    for (const auto& e : entries) {
      SHRINK_CHECK(e.name.find('/') == std::string::npos, "tensor name '", e.name, "' contains '/'");
      const auto& d = e.data;
      if (e.pattern_of.empty() && d.encoding == Encoding::kDense) {
        write_dataset(file.get(), e.name, d.values, false, e.name);
        H5Handle ds(H5Dopen2(file.get(), e.name.c_str(), H5P_DEFAULT), H5Dclose);
        if (e.is_buffer) write_string_attr(ds.get(), "kind", "buffer");
        continue;
      }
      H5Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
      H5Pset_obj_track_times(gcpl.get(), false);
      H5Handle group(H5Gcreate2(file.get(), e.name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
      SHRINK_CHECK(group, "cannot create HDF5 group '", e.name, "' in ", path);
      write_string_attr(group.get(), "encoding", e.pattern_of.empty() ? encoding_name(d.encoding) : "pattern");
      write_string_attr(group.get(), "dtype", info_for(d.dtype).name);
      write_ints_attr(group.get(), "shape", d.shape);
      if (e.is_buffer) write_string_attr(group.get(), "kind", "buffer");
      if (!e.pattern_of.empty()) {
        write_string_attr(group.get(), "pattern_of", e.pattern_of);
        continue;
      }
      write_dataset(group.get(), "values", d.values, true, e.name);
      if (d.encoding == Encoding::kBitmask) write_dataset(group.get(), "bitmask", d.bitmask, true, e.name);
      if (d.encoding == Encoding::kCsr) {
        write_ints_attr(group.get(), "widths", {d.index_bytes, d.ptr_bytes});
        write_dataset(group.get(), "col_indices", d.col_indices, true, e.name);
        write_dataset(group.get(), "row_ptr", d.row_ptr, true, e.name);
      }
    }
    SHRINK_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0, "failed flushing ", path, ": ", h5_error_reason());
    const ssize_t size = H5Fget_file_image(file.get(), nullptr, 0);
    SHRINK_CHECK(size > 0, path.string(), ": cannot size the HDF5 image: ", h5_error_reason());
    image.resize(static_cast<size_t>(size));
    SHRINK_CHECK(H5Fget_file_image(file.get(), image.data(), image.size()) == size, path.string(),
                 ": cannot copy the HDF5 image: ", h5_error_reason());
  }
  core::write_bytes_atomically(path, image.data(), image.size());
}

namespace {

// Link names of `group` in creation order when the file tracks it (shrink's files do), else in
// name order (h5py's default files): entries are matched to a model by name either way.
std::vector<std::string> link_names(hid_t group, const std::string& what) {
  H5Handle gcpl(H5Gget_create_plist(group), H5Pclose);
  unsigned order_flags = 0;
  const bool by_creation =
      gcpl && H5Pget_link_creation_order(gcpl.get(), &order_flags) >= 0 && (order_flags & H5P_CRT_ORDER_TRACKED);
  const H5_index_t index = by_creation ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  H5G_info_t info;
  if (H5Gget_info(group, &info) < 0) throw core::Error(cat(what, ": cannot list its entries"));
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw core::Error(cat(what, ": cannot read entry name #", i));
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(group, ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(name);
  }
  return names;
}

// Reads the entries of `group`. A subgroup without shrink's "encoding" attribute is a level of
// names (h5py's "fc1/weight" for "fc1.weight").
void read_group(hid_t group, const std::string& prefix, const fs::path& path, std::vector<StoredEntry>& out,
                bool& unverified, int depth = 0) {
  // Hard links can make a cycle of groups; no module tree is this deep.
  if (depth > 64) throw core::Error(cat(path.string(), ": '", prefix, "': groups nested over 64 deep (a cycle?)"));
  for (const auto& link : link_names(group, cat(path.string(), prefix.empty() ? "" : cat(": '", prefix, "'")))) {
    const std::string name = prefix + link;
    const std::string what = cat(path.string(), ": '", name, "'");
    H5Handle object(H5Oopen(group, link.c_str(), H5P_DEFAULT), H5Oclose);
    if (!object) throw core::Error(cat(what, ": unreadable"));
    const H5I_type_t type = H5Iget_type(object.get());
    StoredEntry e;
    e.name = name;
    if (type == H5I_DATASET) {
      e.data.values = read_dataset(group, link, what, unverified);
      e.data.shape = e.data.values.sizes().vec();
      e.data.dtype = e.data.values.scalar_type();
      e.is_buffer = read_string_attr(object.get(), "kind") == "buffer";
    } else if (type == H5I_GROUP) {
      const hid_t g = object.get();
      const std::string encoding = read_string_attr(g, "encoding");
      // A group carrying a tensor's "shape" is one of shrink's encoded tensors, not a level of
      // names: without its encoding it is damaged, and read as names it would be blamed on
      // whichever tensor then went missing.
      if (encoding.empty() && H5Aexists(g, "shape") > 0) {
        throw core::Error(cat(what, ": a stored tensor without its 'encoding' attribute (a damaged file)"));
      }
      if (encoding.empty()) {
        read_group(g, name + ".", path, out, unverified, depth + 1);
        continue;
      }
      e.is_buffer = read_string_attr(g, "kind") == "buffer";
      e.data.dtype = info_named(read_string_attr(g, "dtype"), what).torch;
      e.data.shape = read_ints_attr(g, "shape", what);
      if (encoding == "pattern") {
        e.pattern_of = read_string_attr(g, "pattern_of");
      } else {
        e.data.encoding = encoding_from_name(encoding);
        e.data.values = read_dataset(g, "values", what, unverified);
        if (e.data.encoding == Encoding::kBitmask) e.data.bitmask = read_dataset(g, "bitmask", what, unverified);
        if (e.data.encoding == Encoding::kCsr) {
          const auto w = read_ints_attr(g, "widths", what);
          if (w.size() != 2) throw core::Error(cat(what, ": malformed widths"));
          e.data.index_bytes = w[0];
          e.data.ptr_bytes = w[1];
          e.data.col_indices = read_dataset(g, "col_indices", what, unverified);
          e.data.row_ptr = read_dataset(g, "row_ptr", what, unverified);
        }
      }
    } else {
      throw core::Error(cat(what, ": neither a dataset nor a group"));
    }
    out.push_back(std::move(e));
  }
}

std::string read_description(hid_t file, const fs::path& path) {
  std::string text = read_string_attr(file, kDescriptionAttr);
  if (H5Aexists(file, kDescriptionPartsAttr) <= 0) return text;
  const auto parts = read_ints_attr(file, kDescriptionPartsAttr, "the model description");
  constexpr int64_t kMaxParts = kMaxDescriptionBytes / kDescriptionPartBytes + 1;
  if (parts.size() != 1 || parts[0] < 1 || parts[0] > kMaxParts) {
    throw core::Error(cat(path.string(), ": the model description's part count is damaged"));
  }
  for (int64_t p = 1; p < parts[0]; ++p) {
    const std::string name = cat(kDescriptionAttr, ".", p);
    if (H5Aexists(file, name.c_str()) <= 0) {
      throw core::Error(cat(path.string(), ": the model description's part ", p, " of ", parts[0], " is missing"));
    }
    text += read_string_attr(file, name.c_str());
  }
  return text;
}

// `unverified`: a file in shrink's format with a tensor that has no checksum (an older shrink's).
std::vector<StoredEntry> read_unchecked(const fs::path& path, nlohmann::json* description, bool& unverified) {
  H5Handle file = open_h5_for_reading(path);
  // No format attribute: a state_dict another tool wrote (h5py), read by its datasets alone.
  const std::string format = read_string_attr(file.get(), "format");
  if (!format.empty() && format != kFormatTag) {
    throw core::Error(cat(path.string(), ": format attribute is '", format, "'; shrink reads '", kFormatTag,
                          "' or plain datasets named like state_dict keys"));
  }
  bool description_unverified = false;
  if (description) {
    const std::string text = read_description(file.get(), path);
    const bool verified = verify_crc32(file.get(), kDescriptionChecksumAttr, crc32_of(text.data(), text.size()),
                                       cat(path.string(), ": model description"));
    description_unverified = !text.empty() && !verified;
    try {
      *description = text.empty() ? nlohmann::json() : nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw core::Error(cat(path.string(), ": unreadable model description: ", e.what()));
    }
  }
  std::vector<StoredEntry> out;
  // The root group itself, not the file: its creation property list holds the link order flags.
  H5Handle root(H5Gopen2(file.get(), "/", H5P_DEFAULT), H5Gclose);
  if (!root) throw core::Error(cat(path.string(), ": cannot open the root group"));
  bool any_unverified = false;
  read_group(root.get(), "", path, out, any_unverified);
  unverified = (any_unverified || description_unverified) && format == kFormatTag;
  return out;
}

}  // namespace

std::vector<StoredEntry> read_h5(const fs::path& path, nlohmann::json* description) {
  core::require_regular_file(path);
  // The trial reads exactly what the real read will: the description too, whose attribute lookup
  // is where one crafted file overran libhdf5's buffers.
  core::check_in_child(
      [&] {
        nlohmann::json ignored;
        bool unverified = false;
        read_unchecked(path, description ? &ignored : nullptr, unverified);
      },
      path.string(), "the HDF5 library");
  try {
    bool unverified = false;
    auto entries = read_unchecked(path, description, unverified);
    if (unverified)
      core::log_info(path.string(), ": written by a shrink that did not checksum all of an .h5 file; read unverified");
    return entries;
  } catch (const core::Error& e) {
    // Helpers deep in the reader (encoding names, dtypes) do not know the file.
    const std::string what = e.what();
    throw core::Error(what.rfind(path.string(), 0) == 0 ? what : cat(path.string(), ": ", what));
  }
}

}  // namespace shrink::io
