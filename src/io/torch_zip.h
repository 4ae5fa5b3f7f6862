// The index of a PyTorch zip archive (torch.save's format): record name → where its bytes lie.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace shrink::io {

struct ZipRecord {
  uint64_t offset = 0;  // of the record's data within the archive
  uint64_t size = 0;
  bool deflated = false;  // a TorchScript code record; `offset` and `size` are then not its content
};

// Parses the central directory of `archive` (the whole file in memory), zip64 included. PyTorch
// stores records uncompressed, so every record must be stored, and every offset and size is
// checked against the archive, and every record's CRC-32 against its data, before anything relies
// on it. Errors start with `what`.
std::map<std::string, ZipRecord> read_zip_index(std::string_view archive, const std::string& what);

}  // namespace shrink::io
