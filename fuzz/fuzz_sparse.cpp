// Fuzzes the sparse decoder directly. Input: encoding, dtype code, index and pointer widths, rank
// (one byte each), the dims (a byte each), then the values (float32), bitmask, column indices and
// row pointers, each prefixed by a 2-byte length.
#include <torch/torch.h>

#include "fuzz_input.h"
#include "io/sparse_tensor.h"

namespace {

struct Reader {
  const uint8_t* data;
  size_t size;
  size_t at = 0;
  bool take(size_t n, const uint8_t** out) {
    if (n > size - at) return false;
    *out = data + at;
    at += n;
    return true;
  }
  bool byte(uint8_t* b) {
    const uint8_t* p = nullptr;
    if (!take(1, &p)) return false;
    *b = *p;
    return true;
  }
  bool part(at::ScalarType dtype, at::Tensor* out) {
    const uint8_t* p = nullptr;
    if (!take(2, &p)) return false;
    const size_t n = p[0] | (p[1] << 8);
    if (!take(n, &p)) return false;
    const size_t item = c10::elementSize(dtype);
    *out = at::empty({static_cast<int64_t>(n / item)}, at::TensorOptions().dtype(dtype));
    if (n >= item) std::memcpy(out->data_ptr(), p, n / item * item);
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using shrink::io::Encoding;
  Reader r{data, size};
  uint8_t encoding = 0, dtype = 0, index_bytes = 0, ptr_bytes = 0, rank = 0;
  if (!r.byte(&encoding) || !r.byte(&dtype) || !r.byte(&index_bytes) || !r.byte(&ptr_bytes) || !r.byte(&rank)) return 0;
  shrink::io::SparseTensor s;
  s.encoding = static_cast<Encoding>(encoding % 3);
  s.dtype = dtype % 2 ? at::kFloat : at::kChar;
  s.index_bytes = index_bytes % 9;
  s.ptr_bytes = ptr_bytes % 9;
  // Up to rank 3 (255^3 entries): a larger dense shape is a legitimate request for memory that
  // the budget allows and libFuzzer's malloc limit would report.
  for (uint8_t i = 0; i < rank % 4; ++i) {
    uint8_t d = 0;
    if (!r.byte(&d)) return 0;
    s.shape.push_back(d);
  }
  if (!r.part(s.dtype, &s.values) || !r.part(at::kByte, &s.bitmask) || !r.part(at::kByte, &s.col_indices) ||
      !r.part(at::kByte, &s.row_ptr)) {
    return 0;
  }
  shrink::fuzz::expect_clean([&] { shrink::io::decode(s, "fuzzed"); }, "'fuzzed'");
  return 0;
}
