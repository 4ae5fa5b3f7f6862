// SHA-256 digest, used to fingerprint recipes in reports and to refuse resuming a changed run.
#pragma once

#include <string>

namespace shrink::core {

// Lower-case hex digest of `data` (FIPS 180-4).
std::string sha256_hex(const std::string& data);

}  // namespace shrink::core
