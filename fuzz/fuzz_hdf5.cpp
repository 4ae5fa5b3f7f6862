// Fuzzes the HDF5 dataset reader (training data: "images" and "labels").
#include <torch/torch.h>

#include "data/hdf5_reader.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = shrink::fuzz::input_file(data, size, "train.h5");
  shrink::fuzz::expect_clean([&] { shrink::data::read_hdf5_arrays(path, "images", "labels"); }, path.string());
  return 0;
}
