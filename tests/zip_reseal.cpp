// CRC-32 resealing of edited zip archives.
#include "zip_reseal.h"

#include <zlib.h>

#include <cstdint>

namespace shrink::testing {

void reseal_zip(std::string& zip) {
  const auto inside = [&](uint64_t at, uint64_t n) { return at <= zip.size() && n <= zip.size() - at; };
  const auto u = [&](size_t at, int width) {
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(zip[at + static_cast<size_t>(i)]);
    return v;
  };
  const auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) zip[at + static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  for (size_t at = zip.find("PK\x01\x02"); at != std::string::npos; at = zip.find("PK\x01\x02", at + 4)) {
    if (!inside(at, 46) || u(at + 10, 2) != 0) continue;  // deflated code records stay as they are
    const uint64_t local = u(at + 42, 4);
    if (!inside(local, 30)) continue;
    const uint64_t data = local + 30 + u(local + 26, 2) + u(local + 28, 2);
    const uint64_t size = u(at + 24, 4);
    if (!inside(data, size)) continue;
    const auto crc = static_cast<uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(zip.data() + data), static_cast<uInt>(size)));
    put32(at + 16, crc);
    put32(local + 14, crc);
  }
}

}  // namespace shrink::testing
