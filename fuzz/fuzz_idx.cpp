// Fuzzes the IDX reader, plain and gzip (the name decides; a first byte of 0x1f picks .gz).
#include <torch/torch.h>

#include "data/idx_reader.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = shrink::fuzz::input_file(data, size, size > 0 && data[0] == 0x1f ? "images.gz" : "images.idx");
  shrink::fuzz::expect_clean([&] { shrink::data::read_idx(path); }, path.string());
  return 0;
}
