// Compressed storage for pruned tensors: per tensor, the smaller of CSR with narrow indices and a
// bitmask with packed values, or dense when neither is smaller. Lossless.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace shrink::io {

enum class Encoding { kDense, kCsr, kBitmask };

std::string encoding_name(Encoding e);
Encoding encoding_from_name(const std::string& name);  // throws Error for an unknown name

struct SparseTensor {
  Encoding encoding = Encoding::kDense;
  std::vector<int64_t> shape;
  at::ScalarType dtype = at::kFloat;
  at::Tensor values;       // nonzero values in row-major order (kDense: the whole tensor)
  at::Tensor bitmask;      // kBitmask: uint8, bit i (LSB first) set when entry i is nonzero
  at::Tensor col_indices;  // kCsr: uint8 bytes of little-endian unsigned ints, index_bytes each
  at::Tensor row_ptr;      // kCsr: uint8 bytes of little-endian unsigned ints, ptr_bytes each
  int64_t index_bytes = 0;
  int64_t ptr_bytes = 0;

  int64_t stored_bytes() const;
};

// CSR views the tensor as [size(0), numel / size(0)].
int64_t csr_bytes(const at::Tensor& t, int64_t nnz);
int64_t bitmask_bytes(const at::Tensor& t, int64_t nnz);

// Picks the smallest encoding. Only floating-point and int8 tensors of rank >= 1 are compressed, and only
// when that saves at least 4 KiB (smaller savings are eaten by the extra file entries).
SparseTensor encode(const at::Tensor& t);
// Restores the dense tensor; throws an Error naming `name` when the parts are inconsistent
// (a corrupt file), before reading out of bounds.
at::Tensor decode(const SparseTensor& s, const std::string& name);

// Smallest unsigned width (1, 2 or 4 bytes) that holds `max_value`.
int64_t unsigned_width(int64_t max_value);

}  // namespace shrink::io
