// Fuzzes the .safetensors reader: the header's length, JSON, dtypes, shapes and data offsets.
#include <torch/torch.h>

#include "fuzz_input.h"
#include "io/state_dict.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = shrink::fuzz::input_file(data, size, "model.safetensors");
  shrink::fuzz::expect_clean([&] { shrink::io::load_state_dict_file(path); }, path.string());
  return 0;
}
