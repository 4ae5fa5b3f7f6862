// Fuzzes the .pt state_dict reader: entries, compressed encodings and the model description.
#include <torch/torch.h>

#include "fuzz_input.h"
#include "io/state_dict.h"
#include "zip_reseal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // With valid checksums, a mutation reaches the archive reader instead of stopping at the CRC.
  std::string bytes(reinterpret_cast<const char*>(data), size);
  shrink::testing::reseal_zip(bytes);
  const auto path = shrink::fuzz::input_file(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "model.pt");
  shrink::fuzz::expect_clean([&] { shrink::io::load_state_dict_file(path); }, path.string());
  return 0;
}
