// Recomputes a zip's CRC-32s after bytes were edited, shared by the tests and the fuzz targets.
#pragma once

#include <string>

namespace shrink::testing {

// Recomputes the CRC-32 of every stored record of a zip archive (.pt, .pth) after its bytes were
// edited, so the edit reaches the checks behind the checksum, as a crafted file would. Records
// whose headers lie outside `zip` are left alone: the input may be anything a fuzzer made.
void reseal_zip(std::string& zip);

}  // namespace shrink::testing
