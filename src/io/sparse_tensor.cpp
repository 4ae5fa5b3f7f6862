// Sparse codecs. Each encoder has a plain loop, mirrored by the decoder's checks.
#include "io/sparse_tensor.h"

#include <ATen/ATen.h>

#include <cstring>

#include "core/error.h"
#include "core/memory_budget.h"

namespace shrink::io {

using core::cat;

std::string encoding_name(Encoding e) {
  switch (e) {
    case Encoding::kDense:
      return "dense";
    case Encoding::kCsr:
      return "csr";
    case Encoding::kBitmask:
      return "bitmask";
  }
  return "";
}

Encoding encoding_from_name(const std::string& name) {
  if (name == "dense") return Encoding::kDense;
  if (name == "csr") return Encoding::kCsr;
  if (name == "bitmask") return Encoding::kBitmask;
  throw core::Error(cat("unknown tensor encoding '", name, "'"));
}

int64_t unsigned_width(int64_t max_value) {
  if (max_value < (int64_t{1} << 8)) return 1;
  if (max_value < (int64_t{1} << 16)) return 2;
  return 4;
}

int64_t SparseTensor::stored_bytes() const {
  int64_t b = values.defined() ? values.numel() * static_cast<int64_t>(values.element_size()) : 0;
  for (const auto* t : {&bitmask, &col_indices, &row_ptr}) b += t->defined() ? t->numel() : 0;
  return b;
}

namespace {

int64_t rows_of(const at::Tensor& t) { return t.dim() == 0 ? 1 : t.size(0); }

void put_uint(uint8_t* dst, int64_t width, uint64_t v) {
  for (int64_t b = 0; b < width; ++b) dst[b] = static_cast<uint8_t>(v >> (8 * b));
}

uint64_t get_uint(const uint8_t* src, int64_t width) {
  uint64_t v = 0;
  for (int64_t b = 0; b < width; ++b) v |= static_cast<uint64_t>(src[b]) << (8 * b);
  return v;
}

}  // namespace

int64_t csr_bytes(const at::Tensor& t, int64_t nnz) {
  const int64_t rows = rows_of(t), cols = t.numel() / std::max<int64_t>(rows, 1);
  return nnz * (static_cast<int64_t>(t.element_size()) + unsigned_width(cols - 1)) + (rows + 1) * unsigned_width(nnz);
}

int64_t bitmask_bytes(const at::Tensor& t, int64_t nnz) {
  return (t.numel() + 7) / 8 + nnz * static_cast<int64_t>(t.element_size());
}

SparseTensor encode(const at::Tensor& tensor) {
  const auto t = tensor.detach().cpu().contiguous();
  SparseTensor s;
  s.shape = t.sizes().vec();
  s.dtype = t.scalar_type();
  s.values = t;
  const bool compressible = at::isFloatingType(t.scalar_type()) || t.scalar_type() == at::kChar;
  if (!compressible || t.dim() == 0 || t.numel() == 0) return s;
  const auto flat = t.reshape(-1);
  const auto nz = flat.ne(0);
  const int64_t nnz = nz.sum().item<int64_t>();
  const int64_t dense = t.numel() * static_cast<int64_t>(t.element_size());
  const int64_t csr = csr_bytes(t, nnz), bits = bitmask_bytes(t, nnz);
  // Each extra part costs a file entry (~1 KiB in HDF5 or a zip archive): not worth it for tiny savings.
  constexpr int64_t kMinSavedBytes = 4096;
  if (dense - std::min(csr, bits) < kMinSavedBytes) return s;
  s.values = flat.masked_select(nz).contiguous();
  const auto nz_bytes = nz.to(at::kByte);
  const uint8_t* flags = nz_bytes.data_ptr<uint8_t>();
  if (bits <= csr) {
    s.encoding = Encoding::kBitmask;
    s.bitmask = at::zeros({(t.numel() + 7) / 8}, at::kByte);
    uint8_t* out = s.bitmask.data_ptr<uint8_t>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (flags[i]) out[i >> 3] |= static_cast<uint8_t>(1u << (i & 7));
    }
    return s;
  }
  s.encoding = Encoding::kCsr;
  const int64_t rows = rows_of(t), cols = t.numel() / rows;
  s.index_bytes = unsigned_width(cols - 1);
  s.ptr_bytes = unsigned_width(nnz);
  s.col_indices = at::empty({nnz * s.index_bytes}, at::kByte);
  s.row_ptr = at::empty({(rows + 1) * s.ptr_bytes}, at::kByte);
  uint8_t* ci = s.col_indices.data_ptr<uint8_t>();
  uint8_t* rp = s.row_ptr.data_ptr<uint8_t>();
  int64_t k = 0;
  for (int64_t r = 0; r < rows; ++r) {
    put_uint(rp + r * s.ptr_bytes, s.ptr_bytes, static_cast<uint64_t>(k));
    for (int64_t c = 0; c < cols; ++c) {
      if (flags[r * cols + c]) put_uint(ci + (k++) * s.index_bytes, s.index_bytes, static_cast<uint64_t>(c));
    }
  }
  put_uint(rp + rows * s.ptr_bytes, s.ptr_bytes, static_cast<uint64_t>(k));
  return s;
}

at::Tensor decode(const SparseTensor& s, const std::string& name) {
  const std::string what = cat("'", name, "'");
  const uint64_t item = s.dtype == at::ScalarType::Undefined ? 1 : c10::elementSize(s.dtype);
  // A sparse file is small by design, so its declared dense shape is what bounds the decode.
  core::check_fits_in_memory(core::tensor_bytes(s.shape, item, what), what);
  int64_t numel = 1;
  for (int64_t d : s.shape) numel *= d;
  const auto bad = [&](const std::string& why) {
    return core::Error(cat("'", name, "': corrupt ", encoding_name(s.encoding), " tensor: ", why));
  };
  if (!s.values.defined()) throw bad("no values");
  if (s.values.scalar_type() != s.dtype) throw bad("values have the wrong dtype");
  if (s.encoding == Encoding::kDense) {
    if (s.values.numel() != numel) throw bad(cat(s.values.numel(), " values for ", numel, " entries"));
    return s.values.reshape(s.shape);
  }
  auto out = at::zeros({numel}, at::TensorOptions().dtype(s.dtype));
  const auto values = s.values.contiguous();
  const int64_t nnz = values.numel();
  if (nnz > numel) throw bad("more values than entries");
  auto index = at::empty({nnz}, at::kLong);
  int64_t* idx = index.data_ptr<int64_t>();
  if (s.encoding == Encoding::kBitmask) {
    if (!s.bitmask.defined() || s.bitmask.numel() != (numel + 7) / 8) throw bad("bitmask has the wrong length");
    const uint8_t* bits = s.bitmask.contiguous().data_ptr<uint8_t>();
    int64_t k = 0;
    for (int64_t i = 0; i < numel; ++i) {
      if (bits[i >> 3] & (1u << (i & 7))) {
        if (k == nnz) throw bad("bitmask has more bits set than values");
        idx[k++] = i;
      }
    }
    if (k != nnz) throw bad("bitmask has fewer bits set than values");
  } else {
    const int64_t rows = s.shape.empty() ? 1 : s.shape[0];
    const int64_t cols = rows ? numel / rows : 0;
    if (s.index_bytes < 1 || s.index_bytes > 4 || s.ptr_bytes < 1 || s.ptr_bytes > 4) throw bad("bad index width");
    if (!s.col_indices.defined() || s.col_indices.numel() != nnz * s.index_bytes) throw bad("column index count");
    if (!s.row_ptr.defined() || s.row_ptr.numel() != (rows + 1) * s.ptr_bytes) throw bad("row pointer count");
    const uint8_t* ci = s.col_indices.contiguous().data_ptr<uint8_t>();
    const uint8_t* rp = s.row_ptr.contiguous().data_ptr<uint8_t>();
    if (get_uint(rp, s.ptr_bytes) != 0) throw bad("first row pointer is not 0");
    for (int64_t r = 0; r < rows; ++r) {
      const auto begin = static_cast<int64_t>(get_uint(rp + r * s.ptr_bytes, s.ptr_bytes));
      const auto end = static_cast<int64_t>(get_uint(rp + (r + 1) * s.ptr_bytes, s.ptr_bytes));
      if (begin > end || end > nnz) throw bad("row pointers out of order or range");
      for (int64_t k = begin; k < end; ++k) {
        const auto c = static_cast<int64_t>(get_uint(ci + k * s.index_bytes, s.index_bytes));
        if (c >= cols) throw bad("column index out of range");
        idx[k] = r * cols + c;
      }
    }
    if (get_uint(rp + rows * s.ptr_bytes, s.ptr_bytes) != static_cast<uint64_t>(nnz)) throw bad("last row pointer");
  }
  out.index_put_({index}, values);
  return out.reshape(s.shape);
}

}  // namespace shrink::io
